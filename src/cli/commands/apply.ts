/**
 * `palisade apply` and `palisade delete` change a running local mesh's config
 * (validated first, rejected whole on error), as kubectl does for a cluster,
 * and then report what the data plane did with it: per proxy, ACKed or
 * NACKed with the proxy's reason (the control plane's debug API, what
 * `istioctl proxy-status` reads). Before anything is written the control
 * plane must answer, so a stale mesh.json is never trusted. The analyzers
 * (`palisade analyze`) run on the resulting config and their new findings are
 * printed with their codes, as Istio's validation webhook returns warnings
 * and `istioctl analyze` is run after a change; `--strict` refuses a change
 * that brings any.
 */
import { debugAccessAt } from './debug-access.js';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { readManifests, type Manifest } from '../../api/index.js';
import { analyzeManifests, formatFinding } from '../../control/analyze/index.js';
import {
  callDebug,
  formatProblem,
  validateManifests,
  type ProxySyncStatus,
  type SyncStatusReply,
} from '../../control/index.js';
import { PalisadeError } from '../../errors/index.js';
import {
  findMeshState,
  meshApiClient,
  objectFileName,
  replyMessage,
  withClusterIps,
  type MeshInfo,
} from '../../runtime/index.js';
import { parseCommandArgs } from '../args.js';
import type { CliIO, Command } from '../command.js';
import { describeControlError } from '../control-errors.js';
import { proxyName } from './proxy-status.js';

/** How long apply/delete wait for the control plane and every proxy to answer. */
const WAIT_MS = 10_000;
/** The control plane debounces pushes (~100 ms); give it that before judging. */
const PUSH_SETTLE_MS = 300;

interface Target {
  readonly info: MeshInfo;
  readonly stateFile: string;
  readonly files: string[];
  readonly strict: boolean;
}

function loadTarget(args: readonly string[], io: CliIO): Target {
  const { values } = parseCommandArgs(
    args,
    {
      file: { type: 'string', short: 'f', multiple: true },
      'state-dir': { type: 'string' },
      strict: { type: 'boolean' },
    },
    false,
  );
  const files = (values.file ?? []).map((f) => resolve(io.cwd, f));
  if (files.length === 0) throw new PalisadeError('PAL_ERR_USAGE', 'missing -f FILE|DIR');
  const stateFile = join(findMeshState(values['state-dir'], io.cwd), 'mesh.json');
  const info = JSON.parse(readFileSync(stateFile, 'utf8')) as MeshInfo;
  return { info, stateFile, files, strict: values.strict === true };
}

function relative(path: string, io: CliIO): string {
  return path.startsWith(`${io.cwd}/`) ? path.slice(io.cwd.length + 1) : path;
}

/** The control plane's sync status; throws PAL_ERR_CONTROL_UNREACHABLE naming how to start the mesh. */
async function syncStatus(target: Target, io: CliIO): Promise<SyncStatusReply> {
  try {
    const access = debugAccessAt(target.info.stateDir, target.info.stateDir, false);
    return await callDebug<SyncStatusReply>(target.info.control, 'SyncStatus', {}, access, 3000);
  } catch (error) {
    throw new PalisadeError(
      'PAL_ERR_CONTROL_UNREACHABLE',
      `no mesh is running (the control plane at ${target.info.control}, named in ${relative(target.stateFile, io)}, does not answer: ${describeControlError(error)}): start it with npm start (palisade up -f examples/bookinfo)`,
      { cause: error },
    );
  }
}

type Verdict =
  | { readonly state: 'ACKed' }
  | { readonly state: 'NACKed'; readonly reasons: readonly string[] }
  | { readonly state: 'pending'; readonly kinds: readonly string[] };

/** What one proxy did with the last config it was sent. */
function verdict(proxy: ProxySyncStatus): Verdict {
  const reasons: string[] = [];
  const pending: string[] = [];
  for (const [kind, row] of Object.entries(proxy.types)) {
    if (row.sent === null) continue;
    if (row.nack !== null && (row.nackVersion ?? row.sent) === row.sent) {
      reasons.push(`${kind}: ${row.nack}`);
      continue;
    }
    if (row.acked !== row.sent || row.nack !== null) pending.push(kind);
  }
  if (reasons.length > 0) return { state: 'NACKed', reasons };
  if (pending.length > 0) return { state: 'pending', kinds: pending };
  return { state: 'ACKed' };
}

const sleep = (ms: number): Promise<void> =>
  new Promise((r) => {
    setTimeout(r, ms);
  });

/**
 * Waits (bounded) until the control plane has taken the change — its config
 * version moved or it reported new problems — and then until every proxy has
 * answered the resulting push; prints one line per proxy and returns the exit
 * status: 0 when every proxy ACKed, 1 when any NACKed, did not answer in
 * time, or the control plane rejected the change.
 */
async function report(target: Target, before: SyncStatusReply, io: CliIO): Promise<number> {
  const deadline = Date.now() + WAIT_MS;
  const oldProblems = before.configProblems.join('\n');
  let status: SyncStatusReply;
  for (;;) {
    status = await syncStatus(target, io);
    if (status.configProblems.length > 0 && status.configProblems.join('\n') !== oldProblems) {
      io.stderr(
        `the control plane rejected the change:\n  ${status.configProblems.join('\n  ')}\n`,
      );
      return 1;
    }
    if (status.configVersion > before.configVersion) break;
    if (Date.now() > deadline) {
      io.stderr(
        `the control plane at ${target.info.control} did not take the change within ${String(WAIT_MS / 1000)} s\n`,
      );
      return 1;
    }
    await sleep(100);
  }
  await sleep(PUSH_SETTLE_MS);
  for (;;) {
    status = await syncStatus(target, io);
    const pending = status.proxies.some((p) => verdict(p).state === 'pending');
    if (!pending || Date.now() > deadline) break;
    await sleep(100);
  }
  if (status.proxies.length === 0) {
    io.stdout(
      'no proxy is connected to the control plane; they get the change when they connect\n',
    );
    return 0;
  }
  const proxies = [...status.proxies].sort((a, b) =>
    proxyName(a.id).localeCompare(proxyName(b.id)),
  );
  let rejected = 0;
  let acked = 0;
  for (const p of proxies) {
    const v = verdict(p);
    const name = proxyName(p.id);
    if (v.state === 'ACKed') {
      acked += 1;
      io.stdout(`  ACKed   ${name}\n`);
    } else if (v.state === 'NACKed') {
      rejected += 1;
      io.stdout(`  NACKed  ${name}: ${v.reasons.join('; ')}\n`);
    } else {
      rejected += 1;
      io.stdout(
        `  STALE   ${name}: sent ${v.kinds.join(', ')}, no answer within ${String(WAIT_MS / 1000)} s\n`,
      );
    }
  }
  if (rejected > 0) {
    io.stderr(
      `${String(rejected)} of ${String(proxies.length)} proxies did not take the change (they keep their previous config); see palisade proxy-status\n`,
    );
    return 1;
  }
  io.stdout(`every proxy ACKed the change (${String(acked)})\n`);
  return 0;
}

/** A stable identity for a finding, without its file (config files are renamed on apply). */
const findingKey = (f: Parameters<typeof formatFinding>[0]): string => formatFinding(f);

/**
 * Runs the analyzers on the mesh's config as it is and as it would be after
 * the change; returns the Error and Warning findings the change brings.
 */
function newFindings(
  current: readonly Manifest[],
  replaced: ReadonlySet<string>,
  added: readonly Manifest[],
): string[] {
  const after = [...current.filter((m) => !replaced.has(basename(m.file))), ...added];
  const seen = new Set(analyzeManifests(current).map(findingKey));
  return analyzeManifests(after)
    .filter((f) => f.level !== 'Info')
    .map(findingKey)
    .filter((k) => !seen.has(k));
}

/** Prints the analyzer findings; with --strict, refuses (returns true) when there are any. */
function printFindings(findings: readonly string[], strict: boolean, io: CliIO): boolean {
  if (findings.length === 0) return false;
  io.stderr(
    `${strict ? 'refused (--strict)' : 'warning'}: palisade analyze finds ${String(findings.length)} new problem${findings.length === 1 ? '' : 's'} in the resulting config (codes in docs/analyze.md):\n`,
  );
  for (const f of findings) io.stderr(`  ${f}\n`);
  return strict;
}

/** A Status body's reason (Forbidden, Invalid, …), as kubectl prints it. */
function replyReason(reply: { status: number; body: unknown }): string {
  const r = (reply.body as { reason?: unknown } | undefined)?.reason;
  return typeof r === 'string' ? r : String(reply.status);
}

/** Sorted-key JSON: the API returns fields in its own order. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (typeof value === 'object' && value !== null)
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  return value;
}

/**
 * Where the running mesh's config lives: its config directory (files named
 * by objectFileName) or, with `up --apiserver`, its API server — read and
 * written with the mesh's admin kubeconfig, so every change is authenticated,
 * authorized and admitted like kubectl's.
 */
interface ConfigStore {
  current(): Promise<Manifest[]>;
  /** The stored form of a resource, to tell "unchanged" from "configured". */
  text(resource: unknown, namespace: string): string;
  existing(current: readonly Manifest[], final: string): string | undefined;
  /** Writes every staged object; returns those the store refused (reasons on stderr). */
  write(
    staged: readonly { text: string; final: string; resource: unknown }[],
    io: CliIO,
  ): Promise<Set<unknown>>;
  /** Removes one object; false (reason on stderr) when it was not removed. */
  remove(
    o: { final: string; what: string; kind: string; namespace: string; name: string },
    io: CliIO,
  ): Promise<boolean>;
}

function configStore(info: MeshInfo): ConfigStore {
  const api = info.apiServer;
  if (api === undefined)
    return {
      current: () =>
        Promise.resolve(existsSync(info.configDir) ? readManifests([info.configDir]) : []),
      text: (resource) => stringify(resource),
      existing: (_current, final) => (existsSync(final) ? readFileSync(final, 'utf8') : undefined),
      write(staged) {
        for (const s of staged) writeFileSync(`${s.final}.tmp`, s.text, { mode: 0o600 });
        for (const s of staged) renameSync(`${s.final}.tmp`, s.final);
        return Promise.resolve(new Set());
      },
      remove(o) {
        rmSync(o.final);
        return Promise.resolve(true);
      },
    };
  const client = meshApiClient(api.kubeconfig);
  const text = (resource: unknown, namespace: string): string => {
    const o = resource as { metadata?: Record<string, unknown> };
    const metadata = { ...o.metadata, ...(namespace === '' ? {} : { namespace }) };
    return JSON.stringify(canonical({ ...o, metadata }));
  };
  return {
    current: () => client.list(),
    text,
    existing(current, final) {
      const m = current.find((c) => c.file === basename(final));
      if (m === undefined) return undefined;
      const ns = (m.object as { metadata?: { namespace?: string } }).metadata?.namespace ?? '';
      return text(m.object, ns);
    },
    async write(staged, io) {
      const refused = new Set<unknown>();
      for (const s of staged) {
        const reply = await client.apply(s.resource);
        if (reply.status === 200 || reply.status === 201) continue;
        refused.add(s);
        io.stderr(`Error from server (${replyReason(reply)}): ${replyMessage(reply)}\n`);
      }
      return refused;
    },
    async remove(o, io) {
      const reply = await client.remove(o.kind, o.namespace, o.name);
      if (reply.status === 200 || reply.status === 202) return true;
      io.stderr(
        reply.status === 404
          ? `${o.what} not found\n`
          : `Error from server (${replyReason(reply)}): ${replyMessage(reply)}\n`,
      );
      return false;
    },
  };
}

export const applyCommand: Command = {
  path: ['apply'],
  summary: 'Apply resources to the running local mesh and report what every proxy did with them',
  usage: `Usage: palisade apply -f FILE|DIR [-f ...] [--state-dir DIR] [--strict]

Validates every object in the files; if any is invalid nothing is applied and
every problem is printed with its file, object and field. The running mesh is
found under .palisade/ (or --state-dir) and its control plane must answer,
else nothing is written (exit 1: start the mesh with npm start).
The analyzers (palisade analyze) run on the resulting config; what the change
brings (e.g. [PAL0101] a route to a host that does not exist) is printed as a
warning, and --strict refuses the change instead (nothing written, exit 1).
Otherwise each object is created or replaced, and the command waits (up to
10 s) until every proxy has answered the push, printing per proxy ACKed or
NACKed with the proxy's reason. Exit 0 when every proxy ACKed; 1 when one
NACKed or did not answer (it keeps its previous config), the control plane
rejected the change or cannot be reached; 2 on invalid input.`,
  run: async (args, io) => {
    const target = loadTarget(args, io);
    const { info } = target;
    const result = validateManifests(readManifests(target.files));
    if (!result.ok)
      throw new PalisadeError(
        'PAL_ERR_VALIDATION',
        `nothing applied:\n  ${result.problems.map(formatProblem).join('\n  ')}`,
      );
    const before = await syncStatus(target, io);
    const store = configStore(info);
    const current = await store.current();
    const staged: { text: string; final: string; line: string; resource: unknown }[] = [];
    const lines: string[] = [];
    // netns mode: new Services get a ClusterIP from the service CIDR (src/runtime/netns).
    const objects =
      info.serviceCidr === undefined
        ? result.objects
        : withClusterIps(result.objects, current, info.serviceCidr);
    for (const o of objects) {
      const final = join(info.configDir, objectFileName(o.kind, o.namespace, o.name));
      const text = store.text(o.resource, o.namespace);
      const existing = store.existing(current, final);
      const what = `${o.kind} ${o.namespace === '' ? '' : `${o.namespace}/`}${o.name}`;
      if (existing === text) {
        lines.push(`${what} unchanged`);
        continue;
      }
      staged.push({
        text,
        final,
        resource: o.resource,
        line: `${what} ${existing === undefined ? 'created' : 'configured'}`,
      });
    }
    const findings = newFindings(
      current,
      new Set(staged.map((s) => basename(s.final))),
      staged.map((s) => ({ file: s.final, index: 0, object: s.resource })),
    );
    if (printFindings(findings, target.strict, io)) {
      io.stderr('nothing applied\n');
      return 1;
    }
    const refused = await store.write(staged, io);
    for (const line of [...lines, ...staged.filter((s) => !refused.has(s)).map((s) => s.line)])
      io.stdout(`${line}\n`);
    if (refused.size > 0) return 1;
    if (staged.length === 0) return 0;
    return report(target, before, io);
  },
};

export const deleteCommand: Command = {
  path: ['delete'],
  summary: 'Delete resources from the running local mesh and report what every proxy did',
  usage: `Usage: palisade delete -f FILE|DIR [-f ...] [--state-dir DIR] [--strict]

Removes every object named in the files from the running mesh's config (its
control plane must answer, else nothing is removed) and reports, like apply,
per proxy ACKed or NACKed. New analyzer findings the removal brings (e.g. a
route to a subset whose DestinationRule is gone) are printed; --strict
refuses the removal instead. An object that is not there is reported (exit 1);
the others are still deleted. Exit 1 too when a proxy NACKed or did not answer.`,
  run: async (args, io) => {
    const target = loadTarget(args, io);
    const { info } = target;
    const result = validateManifests(readManifests(target.files));
    if (!result.ok)
      throw new PalisadeError(
        'PAL_ERR_VALIDATION',
        `nothing deleted:\n  ${result.problems.map(formatProblem).join('\n  ')}`,
      );
    const before = await syncStatus(target, io);
    const store = configStore(info);
    const current = await store.current();
    const present: {
      final: string;
      what: string;
      kind: string;
      namespace: string;
      name: string;
    }[] = [];
    let missing = 0;
    for (const o of result.objects) {
      const final = join(info.configDir, objectFileName(o.kind, o.namespace, o.name));
      const what = `${o.kind} ${o.namespace === '' ? '' : `${o.namespace}/`}${o.name}`;
      if (store.existing(current, final) === undefined) {
        io.stderr(`${what} not found\n`);
        missing += 1;
        continue;
      }
      present.push({ final, what, kind: o.kind, namespace: o.namespace, name: o.name });
    }
    const findings = newFindings(current, new Set(present.map((p) => basename(p.final))), []);
    if (printFindings(findings, target.strict, io)) {
      io.stderr('nothing deleted\n');
      return 1;
    }
    let removed = 0;
    for (const p of present) {
      if (!(await store.remove(p, io))) {
        missing += 1;
        continue;
      }
      removed += 1;
      io.stdout(`${p.what} deleted\n`);
    }
    const status = removed > 0 ? await report(target, before, io) : 0;
    return missing > 0 ? 1 : status;
  },
};
