/** Error codes of the identity area (SPIFFE IDs, the CA, CSR signing, tokens). */
export const IDENTITY_ERRORS = {
  PAL_ERR_SPIFFE_ID_INVALID: {
    summary: 'A SPIFFE ID or trust domain breaks a rule of the SPIFFE-ID standard.',
    exit: 2,
  },
  PAL_ERR_CA_NOT_FOUND: { summary: 'The CA directory lacks its certificate or key.', exit: 2 },
  PAL_ERR_CA_IDENTITY_MISMATCH: {
    summary: 'A CSR asks for an identity its credential does not entitle; nothing was issued.',
    exit: 2,
  },
  PAL_ERR_CSR_MALFORMED: { summary: 'A certificate signing request could not be parsed.', exit: 2 },
  PAL_ERR_CSR_SIGNATURE_INVALID: { summary: 'A CSR is not signed by the key it carries.', exit: 2 },
  PAL_ERR_CSR_EXTRA_SAN: {
    summary: 'A CSR carries names other than the one SPIFFE ID it may have.',
    exit: 2,
  },
  PAL_ERR_CSR_KEY_UNSUPPORTED: {
    summary: 'A CSR carries a key type or size the CA does not sign.',
    exit: 2,
  },
  PAL_ERR_TOKEN_MISSING: {
    summary: 'A request to the CA carries no service-account token.',
    exit: 2,
  },
  PAL_ERR_TOKEN_INVALID: {
    summary: 'A service-account token is expired, forged, malformed or for another audience.',
    exit: 2,
  },
  PAL_ERR_CA_REQUEST_TOO_LARGE: { summary: 'A request to the CA exceeds the size limit.', exit: 2 },
  PAL_ERR_CERT_INVALID: { summary: 'A file does not hold a usable PEM certificate.', exit: 2 },
  PAL_ERR_PEER_IDENTITY_MISMATCH: {
    summary:
      'A TLS peer presented a certificate whose SPIFFE ID is not one allowed (secure naming).',
    exit: 1,
  },
  PAL_ERR_CA_UNAVAILABLE: {
    summary: 'The CA could not be reached or answered with an error.',
    exit: 1,
  },
} as const;
