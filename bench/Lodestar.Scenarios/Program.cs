using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Lodestar.LoadBalancing;
using Lodestar.Scenarios;
using Lodestar.Testing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

// Runs the same closed-loop traffic, side by side, through every Lodestar policy, a plain HttpClient on one address and a
// local HAProxy (roundrobin, leastconn) in front of the same loopback Kestrel backends. Bounded in time and count.
//
//   dotnet run -c Release --project bench/Lodestar.Scenarios -- [--duration 6] [--out docs/benchmarks-loadbalancing]
var seconds = 6.0;
var output = Path.Combine("docs", "benchmarks-loadbalancing");
for (var i = 0; i < args.Length - 1; i++)
{
    switch (args[i])
    {
        case "--duration":
            seconds = double.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--out":
            output = args[++i];
            break;
    }
}

var duration = TimeSpan.FromSeconds(Math.Clamp(seconds, 1, 60));
using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(15));
var policies = new[]
{
    LoadBalancingPolicies.RoundRobin, LoadBalancingPolicies.Random, LoadBalancingPolicies.LeastRequest, LoadBalancingPolicies.WeightedRoundRobin,
    LoadBalancingPolicies.PeakEwma, LoadBalancingPolicies.RingHash, LoadBalancingPolicies.Maglev,
};

var report = new Report
{
    Command = "dotnet run -c Release --project bench/Lodestar.Scenarios -- " + string.Join(' ', args),
    Machine = $"{Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}",
    SecondsPerSetup = duration.TotalSeconds,
};

report.Scenarios.Add(await RunScenarioAsync(
    "a", "5 equal backends, HTTP/1.1, 32 concurrent callers: throughput and latency", 5, HttpProtocols.Http1, 32, duration, 2_000_000,
    backends => { }, stop.Token));
report.Scenarios.Add(await RunScenarioAsync(
    "b", "5 backends, 4 answer in 5 ms and one in 50 ms (10x slower), HTTP/1.1, 20 concurrent callers: tail latency", 5, HttpProtocols.Http1, 20, duration, 2_000_000,
    backends =>
    {
        foreach (var backend in backends)
        {
            backend.Delay = TimeSpan.FromMilliseconds(5);
        }

        backends[^1].Delay = TimeSpan.FromMilliseconds(50);
    }, stop.Token));
report.Scenarios.Add(await RunScenarioAsync(
    "b8", "as (b) with 8 concurrent callers: tail latency at lower load", 5, HttpProtocols.Http1, 8, duration, 2_000_000,
    backends =>
    {
        foreach (var backend in backends)
        {
            backend.Delay = TimeSpan.FromMilliseconds(5);
        }

        backends[^1].Delay = TimeSpan.FromMilliseconds(50);
    }, stop.Token));
report.Scenarios.Add(await RunScenarioAsync(
    "c", "4 equal backends over HTTP/2 (h2c), 16 concurrent callers, 8,000 requests per setup: traffic share per backend", 4, HttpProtocols.Http2, 16,
    duration, 8_000, backends => { }, stop.Token));

Print(report);
Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output + ".json"))!);
await File.WriteAllTextAsync(output + ".json", JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase }));
await File.WriteAllTextAsync(output + ".svg", Svg.Render(report));
Console.WriteLine($"Wrote {output}.json and {output}.svg");
return 0;

async Task<ScenarioResult> RunScenarioAsync(string id, string description, int backendCount, HttpProtocols protocols, int concurrency, TimeSpan runFor,
    int maxRequests, Action<TestBackend[]> arrange, CancellationToken cancellationToken)
{
    Console.WriteLine($"Scenario ({id}): {description}");
    var backends = new TestBackend[backendCount];
    for (var i = 0; i < backendCount; i++)
    {
        backends[i] = await TestBackend.StartAsync("b" + i, protocols);
    }

    arrange(backends);
    var http2 = protocols == HttpProtocols.Http2;
    var result = new ScenarioResult { Id = id, Description = description };
    try
    {
        await using var haproxy = await HaProxy.StartAsync(backends.Select(b => b.Port).ToArray(), cancellationToken);
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(
            backends.Select((b, i) => new KeyValuePair<string, string?>($"Lodestar:Services:svc:Endpoints:{i}", b.Url))
                .Append(new KeyValuePair<string, string?>("Lodestar:LoadBalancing:Defaults:HashKeyHeader", "X-User")))
            .Build();
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddLogging();
        foreach (var policy in policies)
        {
            services.AddHttpClient("lodestar-" + policy).AddLodestar(o => o.Policy = policy);
        }

        await using var provider = services.BuildServiceProvider();
        var factory = provider.GetRequiredService<IHttpClientFactory>();
        var setups = new List<(string Name, HttpClient Client, string Uri, bool Owned)>();
        if (!http2)
        {
            setups.Add(("plain HttpClient (1 address)", Plain(), backends[0].Url + "/", true));
        }

        foreach (var policy in policies)
        {
            setups.Add(("lodestar " + policy, factory.CreateClient("lodestar-" + policy), "http://svc/", false));
        }

        foreach (var balance in new[] { "roundrobin", "leastconn" })
        {
            var port = haproxy.Ports[http2 ? balance + "-h2" : balance];
            setups.Add(("haproxy " + balance, Plain(), $"http://127.0.0.1:{port}/", true));
        }

        var first = true;
        foreach (var (name, client, uri, owned) in setups)
        {
            // Warm up connections and estimates (the first setup also warms the JIT for everyone, so that running first
            // is no handicap), then measure with per-backend counts taken around the run.
            await LoadAsync(client, uri, http2, concurrency, TimeSpan.FromMilliseconds(first ? 3_000 : 500), first ? 50_000 : 2_000, cancellationToken);
            first = false;
            var before = backends.Select(b => b.Requests).ToArray();
            var run = await LoadAsync(client, uri, http2, concurrency, runFor, maxRequests, cancellationToken);
            run.Setup = name;
            for (var i = 0; i < backends.Length; i++)
            {
                run.Shares[backends[i].Name + (backends[i].Delay > TimeSpan.FromMilliseconds(10) ? " (slow)" : string.Empty)] = backends[i].Requests - before[i];
            }

            result.Results.Add(run);
            Console.WriteLine($"  {name,-34} {run.RequestsPerSecond,9:F0} req/s  p50 {run.P50Ms,7:F2} ms  p99 {run.P99Ms,7:F2} ms  p99.9 {run.P999Ms,7:F2} ms  errors {run.Errors}");
            if (owned)
            {
                client.Dispose();
            }
        }
    }
    finally
    {
        foreach (var backend in backends)
        {
            await backend.DisposeAsync();
        }
    }

    return result;
}

static HttpClient Plain() => new(new SocketsHttpHandler
{
    PooledConnectionLifetime = TimeSpan.FromMinutes(2),
    EnableMultipleHttp2Connections = true,
    ConnectTimeout = TimeSpan.FromSeconds(3),
});

static async Task<RunResult> LoadAsync(HttpClient client, string uri, bool http2, int concurrency, TimeSpan duration, int maxRequests, CancellationToken cancellationToken)
{
    var started = Stopwatch.GetTimestamp();
    var deadline = started + (long)(duration.TotalSeconds * Stopwatch.Frequency);
    var issued = 0;
    var workers = new Task<(List<long> Latencies, int Errors)>[concurrency];
    for (var w = 0; w < concurrency; w++)
    {
        var worker = w;
        workers[w] = Task.Run(async () =>
        {
            var latencies = new List<long>(4096);
            var errors = 0;
            var sequence = worker;
            while (Stopwatch.GetTimestamp() < deadline && Interlocked.Increment(ref issued) <= maxRequests)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, uri);
                if (http2)
                {
                    request.Version = System.Net.HttpVersion.Version20;
                    request.VersionPolicy = HttpVersionPolicy.RequestVersionExact;
                }

                // Hash policies spread over 1,000 users; the others ignore the header.
                request.Headers.Add("X-User", "user-" + (sequence++ % 1_000).ToString(CultureInfo.InvariantCulture));
                var start = Stopwatch.GetTimestamp();
                try
                {
                    using var response = await client.SendAsync(request, cancellationToken);
                    await response.Content.ReadAsByteArrayAsync(cancellationToken);
                    if (!response.IsSuccessStatusCode)
                    {
                        errors++;
                    }
                }
                catch (HttpRequestException)
                {
                    errors++;
                }

                latencies.Add(Stopwatch.GetTimestamp() - start);
            }

            return (latencies, errors);
        }, cancellationToken);
    }

    var results = await Task.WhenAll(workers);
    var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
    var all = results.SelectMany(r => r.Latencies).Select(t => t * 1000.0 / Stopwatch.Frequency).ToArray();
    Array.Sort(all);
    return new RunResult
    {
        Requests = all.Length,
        Errors = results.Sum(r => r.Errors),
        Seconds = elapsed,
        RequestsPerSecond = all.Length / elapsed,
        P50Ms = Percentile(all, 0.50),
        P90Ms = Percentile(all, 0.90),
        P99Ms = Percentile(all, 0.99),
        P999Ms = Percentile(all, 0.999),
        MaxMs = all.Length == 0 ? 0 : all[^1],
        Curve = Svg.Quantiles.Select(q => Percentile(all, q)).ToArray(),
    };
}

static double Percentile(double[] sorted, double quantile)
    => sorted.Length == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(quantile * sorted.Length) - 1, 0, sorted.Length - 1)];

static void Print(Report report)
{
    Console.WriteLine();
    Console.WriteLine(report.Machine);
    foreach (var scenario in report.Scenarios)
    {
        Console.WriteLine();
        Console.WriteLine($"({scenario.Id}) {scenario.Description}");
        Console.WriteLine($"{"setup",-34} {"req/s",9} {"p50 ms",8} {"p99 ms",8} {"p99.9 ms",9} {"errors",6}  share per backend");
        foreach (var run in scenario.Results)
        {
            var total = Math.Max(1, run.Shares.Values.Sum());
            var shares = string.Join(" ", run.Shares.Select(s => $"{s.Key}:{100.0 * s.Value / total:F1}%"));
            Console.WriteLine($"{run.Setup,-34} {run.RequestsPerSecond,9:F0} {run.P50Ms,8:F2} {run.P99Ms,8:F2} {run.P999Ms,9:F2} {run.Errors,6}  {shares}");
        }
    }
}

internal sealed class Report
{
    public string Command { get; set; } = string.Empty;

    public string Machine { get; set; } = string.Empty;

    public double SecondsPerSetup { get; set; }

    public List<ScenarioResult> Scenarios { get; } = [];
}

internal sealed class ScenarioResult
{
    public string Id { get; set; } = string.Empty;

    public string Description { get; set; } = string.Empty;

    public List<RunResult> Results { get; } = [];
}

internal sealed class RunResult
{
    public string Setup { get; set; } = string.Empty;

    public int Requests { get; set; }

    public int Errors { get; set; }

    public double Seconds { get; set; }

    public double RequestsPerSecond { get; set; }

    public double P50Ms { get; set; }

    public double P90Ms { get; set; }

    public double P99Ms { get; set; }

    public double P999Ms { get; set; }

    public double MaxMs { get; set; }

    /// <summary>Gets the requests each backend received during the measured run.</summary>
    public Dictionary<string, int> Shares { get; } = [];

    /// <summary>Gets or sets the latency at each of <see cref="Svg.Quantiles"/>, for the plot.</summary>
    public double[] Curve { get; set; } = [];
}
