/** Error codes shared by every area: configuration, CLI usage, I/O. */
export const COMMON_ERRORS = {
  PAL_ERR_USAGE: {
    summary: 'The command line is malformed: unknown flag, missing argument.',
    exit: 2,
  },
  PAL_ERR_CONFIG_INVALID: {
    summary: 'An environment variable or option has an invalid value.',
    exit: 2,
  },
  PAL_ERR_VALIDATION: {
    summary: 'A resource failed validation; every problem is listed with its field path.',
    exit: 2,
  },
  PAL_ERR_YAML_PARSE: { summary: 'A YAML or JSON document could not be parsed.', exit: 2 },
  PAL_ERR_FILE_READ: { summary: 'A file or directory could not be read.', exit: 2 },
  PAL_ERR_INTERNAL: { summary: 'An unexpected internal error; details are logged.', exit: 1 },
} as const;
