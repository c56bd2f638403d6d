// One grpc-web transport to the Envoy gateway and a typed client per service.
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { IngestionService } from "@gen/financelake/ingestion/v1/ingestion_service_pb.js";
import { MarketDataService } from "@gen/financelake/marketdata/v1/marketdata_service_pb.js";
import { PredictionService } from "@gen/financelake/prediction/v1/prediction_service_pb.js";
import { StreamService } from "@gen/financelake/stream/v1/stream_service_pb.js";

// Envoy serves the UI, so the gateway is this page's origin; the Vite dev server (another
// origin, allowed by the gateway's CORS) names it with VITE_GATEWAY_URL.
const gatewayUrl: string = import.meta.env.VITE_GATEWAY_URL ?? window.location.origin;

const transport = createGrpcWebTransport({ baseUrl: gatewayUrl, useBinaryFormat: true });

export const marketData = createClient(MarketDataService, transport);
export const stream = createClient(StreamService, transport);
export const prediction = createClient(PredictionService, transport);
export const ingestion = createClient(IngestionService, transport);
