// One benchmark run at a time on a machine: two would share host names (bench*) and skew each other's figures,
// and a second run would take the first one's live hosts for leftovers of a crash and remove them.
import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { testbedDir } from '../spec/support/layout.js';

const LOCK = join(testbedDir, 'bench', 'run.lock');

async function holder(): Promise<number | undefined> {
  const pid = Number((await readFile(LOCK, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.includes('bench/main.ts') ? pid : undefined;
}

/** Takes the lock, or throws naming the run that holds it; a lock left by a run that died is taken over. */
export async function takeRunLock(): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const file = await open(LOCK, 'wx');
      await file.writeFile(`${process.pid}\n`);
      await file.close();
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = await holder();
      if (pid) throw new Error(`another benchmark run (pid ${pid}) is in progress; wait for it to finish (lock ${LOCK})`);
      await rm(LOCK, { force: true });
    }
  }
  throw new Error(`could not take the benchmark lock ${LOCK}`);
}

export async function releaseRunLock(): Promise<void> {
  const pid = Number((await readFile(LOCK, 'utf8').catch(() => '')).trim());
  if (pid === process.pid) await rm(LOCK, { force: true });
}
