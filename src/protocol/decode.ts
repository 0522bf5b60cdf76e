// Turns a raw request body into a validated request, or a sentence that says what was wrong.
import type { z } from 'zod';
import { badRequest } from '../errors.js';

/** dockerd sends no Content-Type and empty bodies for argument-less calls: parse whatever came. */
export function parseBody(raw: unknown): unknown {
  const text = Buffer.isBuffer(raw) ? raw.toString('utf8') : typeof raw === 'string' ? raw : '';
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest('the request body is not valid JSON');
  }
}

export function decode<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest('the request body must be a JSON object');
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue.path.join('.');
  if (issue.code === 'invalid_type' && valueAt(body, issue.path) === undefined) {
    throw badRequest(`the request lacks ${field}`);
  }
  throw badRequest(issue.message.startsWith('Invalid') && field ? `${field}: ${issue.message}` : issue.message);
}

function valueAt(body: unknown, path: PropertyKey[]): unknown {
  let v: unknown = body;
  for (const k of path) v = typeof v === 'object' && v !== null ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  return v;
}
