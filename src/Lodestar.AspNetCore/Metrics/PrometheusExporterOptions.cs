namespace Lodestar.AspNetCore.Metrics;

/// <summary>Options of <see cref="PrometheusExporter"/>: which meters it listens to and how many series it keeps.</summary>
public sealed class PrometheusExporterOptions
{
    /// <summary>
    /// Gets the names of the meters to export. Default: <c>Lodestar</c> only. Add for example
    /// <c>Microsoft.AspNetCore.Hosting</c>, <c>Microsoft.AspNetCore.Server.Kestrel</c> or <c>System.Net.Http</c>.
    /// </summary>
    public IList<string> Meters { get; } = new List<string> { Lodestar.Diagnostics.LodestarDiagnostics.Name };

    /// <summary>
    /// Gets or sets the most label combinations kept per instrument; measurements with a new combination beyond it are
    /// dropped, so a tag with unbounded values cannot exhaust memory or the scraper. Default 2,000; 1 to 1,000,000.
    /// </summary>
    public int MaxSeriesPerInstrument { get; set; } = 2000;
}
