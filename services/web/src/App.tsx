// The shell: navigation, and the page the path names.
import { Suspense, lazy, useEffect } from "react";
import { ErrorBoundary } from "./components/ErrorBoundary";
import { Empty, Loading } from "./components/StatusViews";
import { MarketsPage } from "./pages/Markets";
import { Link, parseRoute, useLocation, type Route } from "./router";

// Markets is the landing page; the others load when first opened, so the chart library
// (only the symbol page draws candles) is not in the first download.
const SymbolPage = lazy(() => import("./pages/Symbol").then((module) => ({ default: module.SymbolPage })));
const AlertsPage = lazy(() => import("./pages/Alerts").then((module) => ({ default: module.AlertsPage })));
const PipelinePage = lazy(() => import("./pages/Pipeline").then((module) => ({ default: module.PipelinePage })));
const ImportPage = lazy(() => import("./pages/Import").then((module) => ({ default: module.ImportPage })));
const TracePage = lazy(() => import("./pages/Trace").then((module) => ({ default: module.TracePage })));
const ModelsPage = lazy(() => import("./pages/Models").then((module) => ({ default: module.ModelsPage })));

const NAV = [
  { href: "/markets", label: "Markets", pages: ["markets", "symbol"] },
  { href: "/alerts", label: "Alerts", pages: ["alerts"] },
  { href: "/pipeline", label: "Pipeline", pages: ["pipeline"] },
  { href: "/import", label: "Import", pages: ["import"] },
  { href: "/models", label: "Models", pages: ["models"] },
] as const;

function Page({ route }: { route: Route }) {
  switch (route.page) {
    case "markets":
      return <MarketsPage />;
    case "symbol":
      return <SymbolPage symbol={route.symbol} />;
    case "alerts":
      return <AlertsPage />;
    case "pipeline":
      return <PipelinePage />;
    case "import":
      return <ImportPage />;
    case "models":
      return <ModelsPage />;
    case "trace":
      return <TracePage traceId={route.traceId} />;
    case "not-found":
      return (
        <Empty title="No such page">
          Nothing lives at <code>{route.path}</code>. Start from <Link href="/markets">Markets</Link>.
        </Empty>
      );
  }
}

function title(route: Route): string {
  if (route.page === "symbol") return route.symbol;
  if (route.page === "trace") return `Trace ${route.traceId.slice(0, 8)}`;
  if (route.page === "not-found") return "Not found";
  return route.page[0]!.toUpperCase() + route.page.slice(1);
}

export function App() {
  const { pathname } = useLocation();
  const route = parseRoute(pathname);
  useEffect(() => {
    document.title = `${title(route)} · FinanceLake`;
  }, [route]);
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="app-header">
        <Link href="/markets" className="brand">
          FinanceLake
        </Link>
        <nav aria-label="Main">
          {NAV.map((item) => (
            <Link key={item.href} href={item.href} aria-current={(item.pages as readonly string[]).includes(route.page) ? "page" : undefined}>
              {item.label}
            </Link>
          ))}
        </nav>
      </header>
      <main id="main" tabIndex={-1}>
        <ErrorBoundary resetKey={pathname}>
          <Suspense fallback={<Loading what="the page" />}>
            <Page route={route} />
          </Suspense>
        </ErrorBoundary>
      </main>
    </>
  );
}
