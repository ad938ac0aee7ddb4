using System.Text;
using Lodestar.AspNetCore.Metrics.Internal;

namespace Lodestar.AspNetCore.Metrics;

/// <summary>
/// Collects the measurements of chosen meters (by default <c>Lodestar</c>) with a
/// <see cref="System.Diagnostics.Metrics.MeterListener"/> and writes them in the Prometheus text exposition format.
/// Usable without ASP.NET Core routing: call <see cref="WriteAsync"/> from any HTTP handler.
/// </summary>
/// <remarks>
/// Measurements are aggregated from the moment the exporter is created, so create it at startup, not on the first
/// scrape. Names follow OpenTelemetry's Prometheus mapping: dots become underscores, the unit is appended
/// (<c>_seconds</c>, <c>_bytes</c>), counters end in <c>_total</c>. Histograms have cumulative <c>_bucket</c> series
/// with <c>le</c> up to <c>+Inf</c>, then <c>_sum</c> and <c>_count</c>.
/// </remarks>
public sealed class PrometheusExporter : IDisposable
{
    /// <summary>The content type of the output: <c>text/plain; version=0.0.4; charset=utf-8</c>.</summary>
    public const string ContentType = PrometheusText.ContentType;

    private static readonly UTF8Encoding s_utf8 = new(encoderShouldEmitUTF8Identifier: false);
    private readonly MetricCollector _collector;

    /// <summary>Creates an exporter that listens to the meters named in <paramref name="options"/>, process-wide.</summary>
    /// <param name="options">The options, or <see langword="null"/> for the defaults (the <c>Lodestar</c> meter).</param>
    public PrometheusExporter(PrometheusExporterOptions? options = null)
        : this(options, scope: null)
    {
    }

    /// <summary>Creates an exporter limited to meters without a scope or created by the given <c>IMeterFactory</c>.</summary>
    internal PrometheusExporter(PrometheusExporterOptions? options, object? scope)
    {
        options ??= new PrometheusExporterOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxSeriesPerInstrument, 1, nameof(options));
        _collector = new MetricCollector(options.Meters, options.MaxSeriesPerInstrument, scope);
    }

    /// <summary>Writes every series now, in the text exposition format, to <paramref name="destination"/>.</summary>
    /// <param name="destination">The stream to write to; it is not closed.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the text is written.</returns>
    public async Task WriteAsync(Stream destination, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var bytes = s_utf8.GetBytes(Collect());
        await destination.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stops listening.</summary>
    public void Dispose() => _collector.Dispose();

    internal string Collect() => _collector.Collect();
}
