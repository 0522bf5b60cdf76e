// Reads and sets sysctls straight through /proc/sys: no process.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { badRequest, describe, KnitError, unavailable } from '../errors.js';
import { sysctlPath } from './names.js';

const PROC_SYS = '/proc/sys';

export async function readSysctl(name: string): Promise<string> {
  try {
    return (await readFile(join(PROC_SYS, sysctlPath(name)), 'utf8')).trim();
  } catch (err) {
    if (err instanceof KnitError) throw err;
    throw new KnitError('internal', `cannot read sysctl ${name}: ${describe(err)}`, { cause: err });
  }
}

/** Sets a sysctl unless it already holds the value; a read-only /proc/sys (a managed plugin) gets a message saying what to do. */
export async function writeSysctl(name: string, value: string): Promise<void> {
  if (!/^[A-Za-z0-9_.:-]+$/.test(value)) throw badRequest(`sysctl value ${JSON.stringify(value)} for ${name} is malformed`);
  const current = await readSysctl(name);
  if (current === value) return;
  try {
    await writeFile(join(PROC_SYS, sysctlPath(name)), value);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM') {
      throw unavailable(
        `${name} is ${current} but knit needs ${value}, and /proc/sys cannot be written here (as in a managed plugin); ` +
          `set it on the host: sysctl -w ${name}=${value}`,
        err,
      );
    }
    throw new KnitError('internal', `cannot set sysctl ${name} to ${value}: ${describe(err)}`, { cause: err });
  }
}
