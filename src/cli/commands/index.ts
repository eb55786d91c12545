/** Every CLI command, listed once. Add a command by importing it here. */
import type { Command } from '../command.js';
import { startCommand } from './start.js';

export const COMMANDS: readonly Command[] = [startCommand];
