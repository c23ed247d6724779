// `mold-agent enrol`: makes the agent's identity and trades an enrolment token for a certificate.
// node-forge makes the RSA-2048 key (through Node's own key generator when available, ~50 ms) and the
// CSR; ssh2 makes the ed25519 key the agent installs on hosts. The gateway answers with the certificate
// Mold's CA signed, the CA's certificate and the agent's queue; all of it is stored 0600.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { hostname } from 'node:os';
import forge from 'node-forge';
import { enrol } from './gateway.ts';
import { agentVersion, isEnrolled, keyComment, makeSshKeyPair, saveState, withComment, type AgentState } from './state.ts';

export interface EnrolOptions {
  url: string;
  token: string;
  dir: string;
  name?: string;
  /** Replace an existing enrolment in `dir`. */
  force?: boolean;
}

export function makeIdentity(commonName: string) {
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = keys.publicKey;
  csr.setSubject([{ name: 'commonName', value: commonName }]);
  csr.sign(keys.privateKey, forge.md.sha256.create());
  const ssh = makeSshKeyPair('mold-agent');
  return {
    privateKeyPem: forge.pki.privateKeyToPem(keys.privateKey),
    csrPem: forge.pki.certificationRequestToPem(csr),
    sshPrivateKey: ssh.private,
    sshPublicKey: ssh.public.trim(),
  };
}

export async function enrolAgent(options: EnrolOptions): Promise<AgentState> {
  if (isEnrolled(options.dir) && !options.force) {
    throw new Error(`${options.dir} already holds an enrolled agent (\`mold-agent status\`); use --force to replace it`);
  }
  const name = options.name ?? hostname();
  const identity = makeIdentity(name.slice(0, 64) || 'mold-agent');
  const answer = await enrol(options.url, {
    token: options.token,
    csr: identity.csrPem,
    sshPublicKey: identity.sshPublicKey,
    name,
    version: agentVersion(),
  });
  const certificate = new X509Certificate(answer.certificate);
  if (!certificate.checkPrivateKey(createPrivateKey(identity.privateKeyPem))) {
    throw new Error('The certificate the gateway returned is not for this agent\'s key');
  }
  if (!certificate.verify(new X509Certificate(answer.caCertificate).publicKey)) {
    throw new Error('The certificate the gateway returned is not signed by the CA it returned');
  }
  const state: AgentState = {
    dir: options.dir,
    config: { agentId: answer.agentId, zoneId: answer.zoneId, url: options.url, queueUrl: answer.queueUrl, name, enrolled: new Date().toISOString() },
    privateKeyPem: identity.privateKeyPem,
    certificatePem: answer.certificate,
    caCertificatePem: answer.caCertificate,
    sshPrivateKey: identity.sshPrivateKey,
    sshPublicKey: withComment(identity.sshPublicKey, keyComment(answer.agentId)),
  };
  await saveState(state);
  return state;
}
