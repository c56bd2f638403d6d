// A tiny price trend drawn as one SVG polyline (a chart library per table row would be heavy).

export function sparklinePoints(values: readonly number[], width: number, height: number): string {
  if (values.length < 2) return "";
  const low = Math.min(...values);
  const high = Math.max(...values);
  const span = high - low || 1;
  const step = width / (values.length - 1);
  return values
    .map((value, index) => `${(index * step).toFixed(1)},${(height - ((value - low) / span) * height).toFixed(1)}`)
    .join(" ");
}

export function Sparkline({ values, label }: { values: readonly number[]; label: string }) {
  const width = 120;
  const height = 32;
  if (values.length < 2) return <span className="sparkline-empty">no trend yet</span>;
  const rising = values[values.length - 1]! >= values[0]!;
  return (
    <svg className={`sparkline ${rising ? "up" : "down"}`} width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={label}>
      <polyline points={sparklinePoints(values, width, height)} fill="none" strokeWidth="1.5" />
    </svg>
  );
}
