// Mold's CA (shared/crypto/ca.ts) and the session policy of agent credentials, without a runtime.
import { X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { beforeAll, describe, expect, it } from 'vitest';
import { AGENT_QUEUE_ACTIONS, sessionPolicy } from '../../functions/agent-gateway/config.ts';
import { checkAgentCertificate, checkCsr, createCa, InvalidCsr, signAgentCsr, type CaMaterial } from '../../shared/crypto/ca.ts';

function csrFor(bits = 2048, tamper = false): string {
  const keys = forge.pki.rsa.generateKeyPair({ bits });
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = keys.publicKey;
  csr.setSubject([{ name: 'commonName', value: 'ignored' }]);
  csr.sign(keys.privateKey, forge.md.sha256.create());
  if (tamper) {
    const signature = csr.signature as string;
    csr.signature = String.fromCharCode(signature.charCodeAt(0) ^ 0xff) + signature.slice(1);
  }
  return forge.pki.certificationRequestToPem(csr);
}

let ca: CaMaterial;
beforeAll(() => {
  ca = createCa();
});

describe("Mold's CA", () => {
  it('is a self-signed CA certificate that may sign certificates only', () => {
    const certificate = new X509Certificate(ca.certificate);
    expect(certificate.ca).toBe(true);
    expect(certificate.checkIssued(certificate)).toBe(true);
    expect(certificate.verify(certificate.publicKey)).toBe(true);
    expect(certificate.subject).toContain('CN=Mold agent CA');
  });

  it("signs a CSR with CN = the agent id, a year's validity, a random serial and clientAuth only", () => {
    const now = new Date('2026-01-10T12:00:00Z');
    const first = signAgentCsr(ca, csrFor(), 'agent-1', now);
    const second = signAgentCsr(ca, csrFor(), 'agent-1', now);
    const certificate = new X509Certificate(first.certificate);
    expect(certificate.subject.split('\n')).toContain('CN=agent-1');
    expect(certificate.ca).toBe(false);
    expect(certificate.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(new Date(certificate.validTo).getTime()).toBe(new Date('2027-01-10T12:00:00Z').getTime());
    expect(first.serial).toMatch(/^[0-7][0-9a-f]{31}$/);
    expect(first.serial).not.toBe(second.serial);
    expect(certificate.serialNumber.toLowerCase()).toBe(first.serial);
    expect(checkAgentCertificate(ca.certificate, first.certificate, 'agent-1', now)).toMatchObject({ ok: true });
  });

  it('refuses a CSR that is not one, whose signature does not verify, or whose key is small', () => {
    expect(() => checkCsr('nonsense')).toThrow(InvalidCsr);
    expect(() => checkCsr(csrFor(2048, true))).toThrow('the CSR signature does not verify');
    expect(() => checkCsr(csrFor(1024))).toThrow('the CSR key must be RSA of at least 2048 bits');
  });

  it('checks a certificate against the CA, its validity and its agent', () => {
    const now = new Date();
    const issued = signAgentCsr(ca, csrFor(), 'agent-2', now);
    expect(checkAgentCertificate(createCa().certificate, issued.certificate, 'agent-2')).toEqual({ ok: false, reason: "the certificate is not issued by Mold's CA" });
    expect(checkAgentCertificate(ca.certificate, issued.certificate, 'agent-3')).toEqual({ ok: false, reason: "the certificate is not this agent's" });
    const later = new Date(now.getTime() + 366 * 86_400_000);
    expect(checkAgentCertificate(ca.certificate, issued.certificate, 'agent-2', later)).toEqual({ ok: false, reason: 'the certificate has expired or is not yet valid' });
    expect(checkAgentCertificate(ca.certificate, 'garbage', 'agent-2')).toEqual({ ok: false, reason: 'the certificate cannot be read' });
  });
});

describe('session policy of agent credentials', () => {
  it("allows the agent's queue actions on its one queue, and nothing else", () => {
    const arn = 'arn:aws:sqs:eu-west-1:123456789012:mold-agent-0b6c';
    expect(JSON.parse(sessionPolicy(arn))).toEqual({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: [...AGENT_QUEUE_ACTIONS], Resource: arn }],
    });
    expect(AGENT_QUEUE_ACTIONS).toEqual(['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes']);
  });
});
