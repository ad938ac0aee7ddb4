using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Lodestar.Cli.Demo;

/// <summary>Renders the demo's progress and results: a live table, plain lines, or one JSON object.</summary>
internal static class DemoReport
{
    private static readonly JsonSerializerOptions s_json = new() { WriteIndented = false };

    public static IRenderable LiveView(DemoRunner runner)
    {
        var stats = runner.Stats;
        var total = Math.Max(1, stats.Requests);
        var table = new Table().Border(TableBorder.Rounded)
            .Title(string.Create(CultureInfo.InvariantCulture,
                $"lodestar demo{(runner.Options.Grpc ? " (gRPC)" : string.Empty)} · policy [bold]{Markup.Escape(runner.Options.Policy)}[/] · {runner.Elapsed.TotalSeconds:0.0}/{runner.Options.Duration.TotalSeconds:0}s · {stats.Requests} requests · [{(stats.Failed == 0 ? "green" : "red")}]{stats.Failed} failed[/] · {stats.Retried} retried"));
        table.AddColumns("Instance", "Address", "State", "Requests", "Share", "p50 ms", "p99 ms", "Errors");
        foreach (var backend in runner.AllBackends())
        {
            var endpoint = stats.Endpoints.FirstOrDefault(e => e.Address == backend.Address);
            var latencies = endpoint?.SortedLatencies() ?? [];
            var requests = endpoint?.Requests ?? 0;
            table.AddRow(
                backend.Name,
                backend.Address,
                StateMarkup(backend.State),
                requests.ToString(CultureInfo.InvariantCulture),
                ShareBar(requests / (double)total),
                Format(DemoStats.Percentile(latencies, 0.50)),
                Format(DemoStats.Percentile(latencies, 0.99)),
                (endpoint?.Failed ?? 0).ToString(CultureInfo.InvariantCulture));
        }

        var lines = new List<IRenderable>();
        if (runner.MetricsUrl is { } metrics)
        {
            lines.Add(new Markup("metrics: [link]" + Markup.Escape(metrics) + "[/]"));
        }

        if (runner.AdminUrl is { } admin)
        {
            lines.Add(new Markup("admin: [link]" + Markup.Escape(admin) + "[/]"));
        }

        lines.AddRange(runner.RecentEvents(6).Select(e => new Markup("[grey]" + Markup.Escape(e) + "[/]")));
        return new Rows([table, .. lines]);
    }

    public static string PlainLine(DemoRunner runner)
    {
        var stats = runner.Stats;
        var latencies = stats.SortedLatencies();
        var shares = string.Join(" ", stats.Endpoints.OrderBy(e => e.Address, StringComparer.Ordinal)
            .Select(e => $"{runner.FindBackend(e.Address)?.Name ?? "?"}@{e.Address}={e.Requests}"));
        return string.Create(CultureInfo.InvariantCulture,
            $"[{runner.Elapsed.TotalSeconds,5:0.0}s] requests={stats.Requests} failed={stats.Failed} retried={stats.Retried} p50={DemoStats.Percentile(latencies, 0.5):0.0}ms p99={DemoStats.Percentile(latencies, 0.99):0.0}ms {shares}");
    }

    public static void WriteSummary(DemoRunner runner)
    {
        AnsiConsole.Write(LiveView(runner));
        var stats = runner.Stats;
        var latencies = stats.SortedLatencies();
        AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
            $"[bold]{stats.Requests}[/] requests in {runner.Elapsed.TotalSeconds:0.0}s · p50 {DemoStats.Percentile(latencies, 0.5):0.0} ms · p99 {DemoStats.Percentile(latencies, 0.99):0.0} ms · p99.9 {DemoStats.Percentile(latencies, 0.999):0.0} ms · retried {stats.Retried} · {(stats.Failed == 0 ? "[green]0 failed[/]" : $"[red]{stats.Failed} failed[/]")}"));
    }

    public static string Json(DemoRunner runner)
    {
        var stats = runner.Stats;
        var latencies = stats.SortedLatencies();
        var result = new DemoResult(
            runner.Options.Policy,
            Math.Round(runner.Elapsed.TotalSeconds, 1),
            stats.Requests,
            stats.Failed,
            stats.Retried,
            new LatencyResult(Round(DemoStats.Percentile(latencies, 0.5)), Round(DemoStats.Percentile(latencies, 0.99)), Round(DemoStats.Percentile(latencies, 0.999))),
            stats.Endpoints.OrderBy(e => e.Address, StringComparer.Ordinal).Select(e =>
            {
                var sorted = e.SortedLatencies();
                return new EndpointResult(e.Address, e.Requests, e.Failed, Round(DemoStats.Percentile(sorted, 0.5)), Round(DemoStats.Percentile(sorted, 0.99)));
            }).ToList());
        return JsonSerializer.Serialize(result, s_json);
    }

    private static double Round(double value) => Math.Round(value, 2);

    private static string Format(double ms) => ms.ToString("0.0", CultureInfo.InvariantCulture);

    private static string ShareBar(double share)
    {
        var width = (int)Math.Round(share * 40);
        return string.Create(CultureInfo.InvariantCulture, $"[blue]{new string('█', Math.Min(width, 40))}[/] {share * 100:0.0}%");
    }

    private static string StateMarkup(DemoInstanceState state) => state switch
    {
        DemoInstanceState.Serving => "[green]serving[/]",
        DemoInstanceState.Slow => "[yellow]slow x10[/]",
        DemoInstanceState.Restarting => "[blue]restarting[/]",
        DemoInstanceState.Stopped => "[grey]stopped[/]",
        _ => "[red]killed[/]",
    };

    private sealed record DemoResult(
        [property: JsonPropertyName("policy")] string Policy,
        [property: JsonPropertyName("durationSeconds")] double DurationSeconds,
        [property: JsonPropertyName("requests")] long Requests,
        [property: JsonPropertyName("failed")] long Failed,
        [property: JsonPropertyName("retried")] long Retried,
        [property: JsonPropertyName("latency")] LatencyResult Latency,
        [property: JsonPropertyName("endpoints")] IReadOnlyList<EndpointResult> Endpoints);

    private sealed record LatencyResult(
        [property: JsonPropertyName("p50Ms")] double P50Ms,
        [property: JsonPropertyName("p99Ms")] double P99Ms,
        [property: JsonPropertyName("p999Ms")] double P999Ms);

    private sealed record EndpointResult(
        [property: JsonPropertyName("address")] string Address,
        [property: JsonPropertyName("requests")] long Requests,
        [property: JsonPropertyName("failed")] long Failed,
        [property: JsonPropertyName("p50Ms")] double P50Ms,
        [property: JsonPropertyName("p99Ms")] double P99Ms);
}
