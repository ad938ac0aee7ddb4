using System.Globalization;
using System.Net;
using System.Text;

namespace Lodestar.Scenarios;

/// <summary>
/// Draws the latency distributions of the equal and slow-instance scenarios as percentile curves: x is the percentile on a "nines"
/// scale (50, 90, 99, 99.9), y the latency in milliseconds on a log scale, one line per setup.
/// </summary>
internal static class Svg
{
    private const int Width = 900;
    private const int PanelHeight = 380;
    private const int Left = 70;
    private const int Right = 260;
    private const int Top = 40;
    private const int Bottom = 50;

    private static readonly string[] s_colors =
    [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#000000", "#aa3377", "#66ccee", "#228833",
    ];

    /// <summary>Gets the "nines" positions of the curve points: -log10(1 - q) from 0.3 (p50) to 3 (p99.9).</summary>
    public static double[] Nines { get; } = Enumerable.Range(6, 55).Select(i => i * 0.05).ToArray();

    /// <summary>Gets the quantiles at which each run's latency is recorded for the plot.</summary>
    public static double[] Quantiles { get; } = Nines.Select(x => 1 - Math.Pow(10, -x)).ToArray();

    public static string Render(Report report)
    {
        var panels = report.Scenarios.Where(s => s.Id.Contains("slow", StringComparison.Ordinal) || s.Id == "equal").ToList();
        var svg = new StringBuilder();
        var height = panels.Count * PanelHeight;
        svg.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n");
        svg.Append(CultureInfo.InvariantCulture, $"<rect width=\"{Width}\" height=\"{height}\" fill=\"white\"/>\n");
        for (var p = 0; p < panels.Count; p++)
        {
            Panel(svg, panels[p], p * PanelHeight);
        }

        svg.Append("</svg>\n");
        return svg.ToString();
    }

    private static void Panel(StringBuilder svg, ScenarioResult scenario, int offsetY)
    {
        var plotWidth = Width - Left - Right;
        var plotHeight = PanelHeight - Top - Bottom;
        var values = scenario.Results.Where(r => r.PassNumber == 1).SelectMany(r => r.Curve).Where(v => v > 0).ToList();
        var min = Math.Log10(Math.Max(0.05, values.Count == 0 ? 0.1 : values.Min()));
        var max = Math.Log10(Math.Max(Math.Pow(10, min) * 2, values.Count == 0 ? 1 : values.Max()));
        min = Math.Floor(min * 2) / 2;
        max = Math.Ceiling(max * 2) / 2;
        double X(double nines) => Left + ((nines - Nines[0]) / (Nines[^1] - Nines[0]) * plotWidth);
        double Y(double ms) => offsetY + Top + plotHeight - ((Math.Log10(Math.Max(ms, 0.05)) - min) / (max - min) * plotHeight);

        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left}\" y=\"{offsetY + 22}\" font-size=\"14\" font-weight=\"bold\">({scenario.Id}) {WebUtility.HtmlEncode(scenario.Description)}</text>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{Left}\" y=\"{offsetY + Top}\" width=\"{plotWidth}\" height=\"{plotHeight}\" fill=\"none\" stroke=\"#444\"/>\n");
        foreach (var (nines, label) in new[] { (Math.Log10(2), "p50"), (1.0, "p90"), (2.0, "p99"), (3.0, "p99.9") })
        {
            var x = X(nines);
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{x:F1}\" y1=\"{offsetY + Top}\" x2=\"{x:F1}\" y2=\"{offsetY + Top + plotHeight}\" stroke=\"#ddd\"/>\n");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{x:F1}\" y=\"{offsetY + Top + plotHeight + 18}\" text-anchor=\"middle\">{label}</text>\n");
        }

        for (var exponent = min; exponent <= max + 1e-9; exponent += 0.5)
        {
            var ms = Math.Pow(10, exponent);
            var y = Y(ms);
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" y1=\"{y:F1}\" x2=\"{Left + plotWidth}\" y2=\"{y:F1}\" stroke=\"#eee\"/>\n");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left - 6}\" y=\"{y + 4:F1}\" text-anchor=\"end\">{ms:G3}</text>\n");
        }

        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"16\" y=\"{offsetY + Top + (plotHeight / 2)}\" transform=\"rotate(-90 16 {offsetY + Top + (plotHeight / 2)})\" text-anchor=\"middle\">latency (ms, log)</text>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left + (plotWidth / 2)}\" y=\"{offsetY + PanelHeight - 10}\" text-anchor=\"middle\">percentile</text>\n");
        // One line per setup: the first measured pass (the JSON keeps every pass).
        var runs = scenario.Results.Where(r => r.PassNumber == 1).ToList();
        for (var i = 0; i < runs.Count; i++)
        {
            var run = runs[i];
            var color = s_colors[i % s_colors.Length];
            var dash = run.Setup.StartsWith("haproxy", StringComparison.Ordinal) ? " stroke-dasharray=\"6 3\"" : run.Setup.StartsWith("plain", StringComparison.Ordinal) ? " stroke-dasharray=\"2 2\"" : string.Empty;
            var points = string.Join(' ', run.Curve.Select((v, k) => string.Create(CultureInfo.InvariantCulture, $"{X(Nines[k]):F1},{Y(v):F1}")));
            svg.Append(CultureInfo.InvariantCulture, $"<polyline points=\"{points}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>\n");
            var legendY = offsetY + Top + 10 + (i * 18);
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Width - Right + 15}\" y1=\"{legendY}\" x2=\"{Width - Right + 40}\" y2=\"{legendY}\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>\n");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Width - Right + 46}\" y=\"{legendY + 4}\">{WebUtility.HtmlEncode(run.Setup)}</text>\n");
        }
    }
}
