/** Every CLI command, listed once. Add a command by importing it here. */
import type { Command } from '../command.js';
import { startCommand } from './start.js';
import {
  caInitCommand,
  caInspectCommand,
  caIssueCommand,
  caServeCommand,
  caTokenCommand,
  spiffeValidateCommand,
} from './ca.js';
import { authCanICommand } from './auth-can-i.js';
import { authWhoCanCommand } from './auth-who-can.js';
import { authCoversCommand } from './auth-covers.js';
import { checkNetpolCommand } from './check-netpol.js';
import { checkAuthzCommand } from './check-authz.js';
import { auditCommand } from './audit.js';
import { auditPodSecurityCommand } from './audit-pod-security.js';
import { proxyCommand } from './proxy.js';
import { controlCommand } from './control.js';
import { analyzeCommand } from './analyze.js';
import { upCommand } from './up.js';
import { applyCommand, deleteCommand } from './apply.js';
import { proxyConfigCommand, proxyStatusCommand } from './proxy-status.js';
import { apiserverCommand } from './apiserver.js';
import { injectWebhookCommand } from './inject-webhook.js';
import { proxyInitCommand } from './proxy-init.js';
import { execCommand } from './exec.js';

export const COMMANDS: readonly Command[] = [
  startCommand,
  caInitCommand,
  caIssueCommand,
  caInspectCommand,
  caServeCommand,
  caTokenCommand,
  spiffeValidateCommand,
  authCanICommand,
  authWhoCanCommand,
  authCoversCommand,
  checkNetpolCommand,
  checkAuthzCommand,
  auditCommand,
  auditPodSecurityCommand,
  proxyCommand,
  controlCommand,
  analyzeCommand,
  upCommand,
  applyCommand,
  deleteCommand,
  proxyStatusCommand,
  proxyConfigCommand,
  apiserverCommand,
  injectWebhookCommand,
  proxyInitCommand,
  execCommand,
];
