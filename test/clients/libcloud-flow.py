# libcloud's CloudStack driver against Mold (run by test/integration/libcloud.test.ts with Debian's
# python3-libcloud): the listings its compute surface starts from. Prints one JSON object of what it
# saw; any exception fails the run.
import json
import os
import sys

from libcloud.compute.providers import get_driver
from libcloud.compute.types import Provider

from urllib.parse import urlparse

api = urlparse(os.environ['MOLD_API_URL'])
driver = get_driver(Provider.CLOUDSTACK)(
    key=os.environ['MOLD_APIKEY'], secret=os.environ['MOLD_SECRETKEY'],
    host=api.hostname, port=api.port, path=api.path, secure=api.scheme == 'https',
)

locations = driver.list_locations()
sizes = driver.list_sizes()
images = driver.list_images()
# After listVirtualMachines, list_nodes reads listPublicIpAddresses, listPortForwardingRules and
# listIpForwardingRules: a 432 from any of them failed it outright.
nodes = driver.list_nodes()
pair = driver.import_key_pair_from_string(os.environ['MOLD_KEYPAIR'], os.environ['MOLD_PUBLIC_KEY'])
pairs = driver.list_key_pairs()
missing = None
try:
    driver.ex_get_node('00000000-0000-4000-8000-000000000000')
except Exception as error:  # libcloud raises for a node that is not there
    missing = type(error).__name__
driver.delete_key_pair(pair)
json.dump({
    'locations': [l.name for l in locations],
    'sizes': [s.name for s in sizes],
    'images': len(images),
    'nodes': [n.name for n in nodes],
    'keypair': pair.name,
    'keypairs': [p.name for p in pairs],
    'missingNode': missing,
}, sys.stdout)
