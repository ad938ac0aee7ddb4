using System.Diagnostics;

namespace Lodestar.Diagnostics;

/// <summary>Names of Lodestar's meter and activity source, for OpenTelemetry and <c>MeterListener</c> subscriptions.</summary>
public static class LodestarDiagnostics
{
    /// <summary>The name of the <see cref="System.Diagnostics.Metrics.Meter"/> and the <see cref="ActivitySource"/>: <c>Lodestar</c>.</summary>
    public const string Name = "Lodestar";

    internal static readonly ActivitySource ActivitySource = new(Name, typeof(LodestarDiagnostics).Assembly.GetName().Version?.ToString());
}
