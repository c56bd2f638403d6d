// The loading, empty and error states every view shows, each saying what to do next.
import type { ReactNode } from "react";
import { adviseOn } from "../api/errors";
import { traceIdOf, traceLink, useTraceUrlTemplate } from "../api/traces";

export function Loading({ what }: { what: string }) {
  return (
    <div className="state state-loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> Loading {what}…
    </div>
  );
}

export function Empty({ title, children }: { title: string; children: ReactNode }) {
  return (
    <div className="state state-empty" role="status">
      <strong>{title}</strong>
      <div>{children}</div>
    </div>
  );
}

export function ErrorView({ error, what, onRetry }: { error: unknown; what: string; onRetry?: () => void }) {
  const { title, detail, advice } = adviseOn(error);
  const traceId = traceIdOf(error);
  const template = useTraceUrlTemplate(traceId !== null);
  const link = traceId ? traceLink(template, traceId) : null;
  return (
    <div className="state state-error" role="alert">
      <strong>
        Could not load {what}: {title.toLowerCase()}
      </strong>
      {detail && <code className="error-detail">{detail}</code>}
      <div>{advice}</div>
      {traceId && (
        <div className="muted">
          Trace{" "}
          {link ? (
            <a href={link} target="_blank" rel="noreferrer">
              <code>{traceId}</code>
            </a>
          ) : (
            <code>{traceId}</code>
          )}
        </div>
      )}
      {onRetry && (
        <button type="button" onClick={onRetry}>
          Retry
        </button>
      )}
    </div>
  );
}

/** A small badge saying whether a live stream is flowing. */
export function LiveBadge({ status }: { status: "connecting" | "live" | "reconnecting" }) {
  const label = { connecting: "connecting", live: "live", reconnecting: "reconnecting…" }[status];
  return (
    <span className={`live-badge live-${status}`} role="status" aria-live="polite">
      <span className="dot" aria-hidden="true" /> {label}
    </span>
  );
}
