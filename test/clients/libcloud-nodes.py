# libcloud's CloudStack driver against Mold (run by test/e2e/clients-lab.test.ts with Debian's
# python3-libcloud, in a zone with a real host): a node's life, create (started), reboot, stop,
# start, destroy with expunge. Prints one JSON object of what it saw; any exception fails the run.
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


def named(items, name):
    return next(item for item in items if item.name == name)


location = named(driver.list_locations(), os.environ['MOLD_ZONE'])
size = named(driver.list_sizes(location=location), os.environ['MOLD_SIZE'])
image = named(driver.list_images(location=location), os.environ['MOLD_IMAGE'])
network = named(driver.ex_list_networks(), os.environ['MOLD_NETWORK'])

name = os.environ['MOLD_NODE']
# libcloud deploys stopped unless told to start (its ex_start_vm defaults to False).
node = driver.create_node(name=name, size=size, image=image, location=location, networks=[network], ex_start_vm=True)
seen = {'created': {'name': node.name, 'state': node.state, 'private_ips': node.private_ips}}
seen['rebooted'] = driver.reboot_node(node)
seen['stopped'] = driver.ex_stop(node)
seen['started'] = driver.ex_start(node)
seen['got'] = driver.ex_get_node(node.id).state
seen['listed'] = [n.name for n in driver.list_nodes()]
seen['destroyed'] = driver.destroy_node(node, ex_expunge=True)
seen['after'] = [n.name for n in driver.list_nodes()]
json.dump(seen, sys.stdout, default=str)
