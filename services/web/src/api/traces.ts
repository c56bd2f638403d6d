// Trace ids the gateway answers (`x-trace-id`, when tracing is on) and where to view them.
import { ConnectError } from "@connectrpc/connect";
import { useEffect, useState } from "react";

export const TRACE_ID_HEADER = "x-trace-id";

interface UiConfig {
  /** "http://localhost:16686/trace/{trace_id}", or null when tracing is off. */
  trace_url: string | null;
}

let config: Promise<UiConfig> | null = null;

/** The gateway's `/ui-config.json`, fetched once it answers; until then tracing counts as off. */
export function uiConfig(): Promise<UiConfig> {
  config ??= fetch(new URL("/ui-config.json", import.meta.env.VITE_GATEWAY_URL ?? window.location.origin))
    .then(async (response) => {
      if (!response.ok) throw new Error(`ui-config: HTTP ${response.status}`);
      return (await response.json()) as UiConfig;
    })
    .catch(() => {
      config = null; // ask again next time
      return { trace_url: null };
    });
  return config;
}

/** The trace id a failed call's response carried, if any. */
export function traceIdOf(error: unknown): string | null {
  return ConnectError.from(error).metadata.get(TRACE_ID_HEADER);
}

/** The viewer's address of a trace, from a `{trace_id}` template. */
export function traceLink(template: string | null, traceId: string): string | null {
  return template ? template.replace("{trace_id}", encodeURIComponent(traceId)) : null;
}

/** The viewer's `{trace_id}` template, asked of the gateway only when there is a trace to link. */
export function useTraceUrlTemplate(wanted: boolean): string | null {
  const [template, setTemplate] = useState<string | null>(null);
  useEffect(() => {
    if (!wanted) return;
    let live = true;
    void uiConfig().then((loaded) => live && setTemplate(loaded.trace_url));
    return () => {
      live = false;
    };
  }, [wanted]);
  return template;
}
