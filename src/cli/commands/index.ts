/** Every CLI command, listed once. Add a command by importing it here. */
import type { Command } from '../command.js';
import { startCommand } from './start.js';
import { authCanICommand } from './auth-can-i.js';
import { checkNetpolCommand } from './check-netpol.js';
import { auditCommand } from './audit.js';
import { auditPodSecurityCommand } from './audit-pod-security.js';

export const COMMANDS: readonly Command[] = [
  startCommand,
  authCanICommand,
  checkNetpolCommand,
  auditCommand,
  auditPodSecurityCommand,
];
