// ImportHistory's progress messages folded into what the Import page shows.
import { ImportState, type RowError } from "@gen/financelake/ingestion/v1/import_pb.js";
import type { ImportHistoryResponse } from "@gen/financelake/ingestion/v1/ingestion_service_pb.js";
import { int64 } from "./convert";

/** Row errors kept for display; the counts stay exact beyond it. */
export const MAX_ROW_ERRORS = 1000;

export interface ImportProgress {
  state: ImportState;
  currentSymbol: string;
  rowsFetched: number;
  rowsPublished: number;
  actionsPublished: number;
  message: string;
  rowErrors: RowError[];
  rowErrorCount: number;
  /** Share of the work done, 0..1; null when the total is unknown (a CSV file's symbols). */
  fraction: number | null;
}

export function startProgress(): ImportProgress {
  return {
    state: ImportState.RUNNING,
    currentSymbol: "",
    rowsFetched: 0,
    rowsPublished: 0,
    actionsPublished: 0,
    message: "",
    rowErrors: [],
    rowErrorCount: 0,
    fraction: 0,
  };
}

/**
 * The progress after one message. Counters in the message are running totals; row errors
 * are the chunk's own, so they accumulate. With the symbols known, a symbol's chunks mean
 * the ones before it are done.
 */
export function applyProgress(progress: ImportProgress, response: ImportHistoryResponse, symbols: readonly string[]): ImportProgress {
  const rowErrors = [...progress.rowErrors, ...response.rowErrors].slice(0, MAX_ROW_ERRORS);
  const symbolIndex = symbols.indexOf(response.currentSymbol);
  let fraction: number | null = progress.fraction;
  if (response.state === ImportState.DONE) fraction = 1;
  else if (symbols.length === 0) fraction = null;
  else if (symbolIndex >= 0) fraction = Math.max(progress.fraction ?? 0, (symbolIndex + 0.5) / symbols.length);
  return {
    state: response.state === ImportState.UNSPECIFIED ? progress.state : response.state,
    currentSymbol: response.currentSymbol || progress.currentSymbol,
    rowsFetched: int64(response.rowsFetched),
    rowsPublished: int64(response.rowsPublished),
    actionsPublished: int64(response.actionsPublished),
    message: response.message,
    rowErrors,
    rowErrorCount: progress.rowErrorCount + response.rowErrors.length,
    fraction,
  };
}
