// Client-side routes on real paths (deep links work: the gateway answers index.html for each
// page prefix, see gateway/ui.py), with the History API and no router library.
import { useSyncExternalStore, type AnchorHTMLAttributes, type MouseEvent } from "react";

export type Route =
  | { page: "markets" }
  | { page: "symbol"; symbol: string }
  | { page: "alerts" }
  | { page: "pipeline" }
  | { page: "import" }
  | { page: "models" }
  | { page: "trace"; traceId: string }
  | { page: "not-found"; path: string };

const NAVIGATE_EVENT = "financelake:navigate";

export function parseRoute(pathname: string): Route {
  const parts = pathname.split("/").filter(Boolean).map(decodeURIComponent);
  const [first, second] = parts;
  if (parts.length === 0 || (first === "markets" && parts.length === 1)) return { page: "markets" };
  if (first === "symbols" && second && parts.length === 2) return { page: "symbol", symbol: second.toUpperCase() };
  if (first === "traces" && second && parts.length === 2) return { page: "trace", traceId: second };
  if (parts.length === 1 && (first === "alerts" || first === "pipeline" || first === "import" || first === "models")) {
    return { page: first };
  }
  return { page: "not-found", path: pathname };
}

export function symbolPath(symbol: string): string {
  return `/symbols/${encodeURIComponent(symbol)}`;
}

function subscribe(onChange: () => void): () => void {
  window.addEventListener("popstate", onChange);
  window.addEventListener(NAVIGATE_EVENT, onChange);
  return () => {
    window.removeEventListener("popstate", onChange);
    window.removeEventListener(NAVIGATE_EVENT, onChange);
  };
}

/** The current location's path and query, re-rendering on navigation. */
export function useLocation(): { pathname: string; search: URLSearchParams } {
  const href = useSyncExternalStore(subscribe, () => window.location.pathname + window.location.search);
  const url = new URL(href, window.location.origin);
  return { pathname: url.pathname, search: url.searchParams };
}

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (options.replace) window.history.replaceState(null, "", to);
  else window.history.pushState(null, "", to);
  window.dispatchEvent(new Event(NAVIGATE_EVENT));
}

/** An ordinary link (open in a new tab works) that navigates in place on a plain click. */
export function Link({ href, onClick, ...props }: AnchorHTMLAttributes<HTMLAnchorElement> & { href: string }) {
  const handleClick = (event: MouseEvent<HTMLAnchorElement>): void => {
    onClick?.(event);
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
      return;
    }
    event.preventDefault();
    navigate(href);
  };
  return <a href={href} onClick={handleClick} {...props} />;
}
