import { create } from "@bufbuild/protobuf";
import { ImportState, RowErrorSchema } from "@gen/financelake/ingestion/v1/import_pb.js";
import { ImportHistoryResponseSchema } from "@gen/financelake/ingestion/v1/ingestion_service_pb.js";
import { describe, expect, it } from "vitest";
import { applyProgress, startProgress } from "./imports";

const message = (init: Parameters<typeof create<typeof ImportHistoryResponseSchema>>[1]) => create(ImportHistoryResponseSchema, init);

describe("import progress", () => {
  it("counts symbols done, keeps running totals and accumulates each chunk's row errors", () => {
    const symbols = ["AAA", "BBB"];
    let progress = applyProgress(startProgress(), message({ state: ImportState.RUNNING }), symbols);
    progress = applyProgress(
      progress,
      message({ state: ImportState.RUNNING, currentSymbol: "AAA", rowsFetched: 10n, rowsPublished: 9n, rowErrors: [create(RowErrorSchema, { line: 4n, field: "close", reason: "not a number" })] }),
      symbols,
    );
    expect(progress.fraction).toBe(0.25);
    progress = applyProgress(
      progress,
      message({ state: ImportState.RUNNING, currentSymbol: "BBB", rowsFetched: 20n, rowsPublished: 18n, rowErrors: [create(RowErrorSchema, { line: 9n, field: "volume", reason: "negative" })] }),
      symbols,
    );
    expect(progress).toMatchObject({ currentSymbol: "BBB", rowsFetched: 20, rowsPublished: 18, rowErrorCount: 2, fraction: 0.75 });
    expect(progress.rowErrors.map((error) => error.field)).toEqual(["close", "volume"]);
    progress = applyProgress(progress, message({ state: ImportState.DONE, rowsFetched: 20n, rowsPublished: 18n }), symbols);
    expect(progress).toMatchObject({ state: ImportState.DONE, fraction: 1, currentSymbol: "BBB", rowErrorCount: 2 });
  });

  it("has no fraction while a CSV file's symbols are unknown, and keeps the failure's reason", () => {
    let progress = applyProgress(startProgress(), message({ state: ImportState.RUNNING, currentSymbol: "AAA", rowsFetched: 5n }), []);
    expect(progress.fraction).toBeNull();
    progress = applyProgress(progress, message({ state: ImportState.FAILED, message: "line 7: no time column" }), []);
    expect(progress).toMatchObject({ state: ImportState.FAILED, message: "line 7: no time column" });
  });
});
