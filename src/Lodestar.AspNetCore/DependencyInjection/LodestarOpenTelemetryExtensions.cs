using Lodestar.Diagnostics;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace OpenTelemetry;

/// <summary>Subscribes OpenTelemetry to Lodestar's meter and activity source.</summary>
public static class LodestarOpenTelemetryExtensions
{
    /// <summary>
    /// Exports Lodestar's metrics (the <c>Lodestar</c> meter):
    /// <c>services.AddOpenTelemetry().WithMetrics(m => m.AddLodestarInstrumentation().AddOtlpExporter())</c>.
    /// </summary>
    /// <param name="builder">The meter provider builder.</param>
    /// <returns>The builder.</returns>
    public static MeterProviderBuilder AddLodestarInstrumentation(this MeterProviderBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddMeter(LodestarDiagnostics.Name);
    }

    /// <summary>
    /// Exports Lodestar's spans (the <c>Lodestar</c> activity source: one <c>lodestar.attempt</c> span per attempt):
    /// <c>services.AddOpenTelemetry().WithTracing(t => t.AddLodestarInstrumentation().AddOtlpExporter())</c>.
    /// </summary>
    /// <param name="builder">The tracer provider builder.</param>
    /// <returns>The builder.</returns>
    public static TracerProviderBuilder AddLodestarInstrumentation(this TracerProviderBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddSource(LodestarDiagnostics.Name);
    }
}
