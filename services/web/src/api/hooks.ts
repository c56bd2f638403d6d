// Data loading for the views: a one-shot (optionally refreshed) call and a server stream that
// reconnects. Both cancel their calls when the view goes away or its inputs change.
import { useCallback, useEffect, useRef, useState } from "react";

export type AsyncState<T> =
  | { status: "loading" }
  | { status: "error"; error: unknown }
  | { status: "ready"; data: T };

/**
 * Calls `load` when `deps` change, and again every `refreshMs` if given. A refresh keeps the
 * data on screen: the state goes back to "loading" only when the inputs change.
 */
export function useAsync<T>(
  load: (signal: AbortSignal) => Promise<T>,
  deps: readonly unknown[],
  refreshMs?: number,
): AsyncState<T> & { reload: () => void } {
  const [state, setState] = useState<AsyncState<T>>({ status: "loading" });
  const [generation, setGeneration] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  useEffect(() => {
    setState({ status: "loading" });
  }, deps); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async (): Promise<void> => {
      try {
        const data = await loadRef.current(controller.signal);
        if (!controller.signal.aborted) setState({ status: "ready", data });
      } catch (error) {
        if (!controller.signal.aborted) setState({ status: "error", error });
      }
      if (refreshMs !== undefined && !controller.signal.aborted) timer = setTimeout(run, refreshMs);
    };
    void run();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [...deps, generation, refreshMs]); // eslint-disable-line react-hooks/exhaustive-deps

  const reload = useCallback(() => {
    setState({ status: "loading" });
    setGeneration((value) => value + 1);
  }, []);
  return { ...state, reload };
}

export type StreamStatus =
  | { status: "connecting" }
  | { status: "live" }
  | { status: "reconnecting"; error: unknown; retryInMs: number };

const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 15_000;

/** What a stream's call takes: its cancellation, and the callback that marks it open. */
export interface StreamCallOptions {
  signal: AbortSignal;
  onHeader: () => void;
}

/**
 * Keeps a server stream open while `deps` hold (`enabled` false closes it), passing each
 * message to `onMessage`; a broken stream is reopened with a growing delay. It is "live" from
 * its response headers: a quiet stream (no alert yet) is still subscribed.
 */
export function useServerStream<T>(
  open: (options: StreamCallOptions) => AsyncIterable<T>,
  onMessage: (message: T) => void,
  deps: readonly unknown[],
  enabled = true,
): StreamStatus {
  const [status, setStatus] = useState<StreamStatus>({ status: "connecting" });
  const openRef = useRef(open);
  openRef.current = open;
  const onMessageRef = useRef(onMessage);
  onMessageRef.current = onMessage;

  useEffect(() => {
    if (!enabled) return;
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let delay = FIRST_RETRY_MS;
    const connect = async (): Promise<void> => {
      setStatus({ status: "connecting" });
      const onHeader = (): void => {
        setStatus({ status: "live" });
        delay = FIRST_RETRY_MS;
      };
      try {
        for await (const message of openRef.current({ signal: controller.signal, onHeader })) {
          onMessageRef.current(message);
        }
        // A server that ends the stream (a restart) is reconnected to like a failure.
        throw new Error("the stream ended");
      } catch (error) {
        if (controller.signal.aborted) return;
        setStatus({ status: "reconnecting", error, retryInMs: delay });
        timer = setTimeout(() => void connect(), delay);
        delay = Math.min(delay * 2, MAX_RETRY_MS);
      }
    };
    void connect();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [...deps, enabled]); // eslint-disable-line react-hooks/exhaustive-deps

  return status;
}
