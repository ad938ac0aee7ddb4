using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Scenarios;

/// <summary>What a setup's client is: a plain <see cref="HttpClient"/>, a Lodestar policy (optionally hedged), or M.E.SD's round robin.</summary>
internal enum SetupKind
{
    /// <summary>A plain <see cref="HttpClient"/> on one address (a backend, or a proxy in front of all of them).</summary>
    Plain,

    /// <summary>
    /// A plain <see cref="HttpClient"/> whose callers take the backends' addresses in turn themselves (one shared counter):
    /// the same spread of connections over every backend as a balancing client, with no library in between.
    /// </summary>
    PlainRotated,

    /// <summary>
    /// A client from <c>IHttpClientFactory</c> with nothing added (the factory's own logging handlers only), rotating over
    /// the backends as <see cref="PlainRotated"/>: what any handler added to a factory client starts from.
    /// </summary>
    Factory,

    /// <summary>A factory client with Lodestar's handler under one policy, its resilience defaults on.</summary>
    Lodestar,

    /// <summary>A factory client with Microsoft.Extensions.ServiceDiscovery's round robin.</summary>
    Mesd,

    /// <summary>As <see cref="Mesd"/>, behind the standard resilience handler.</summary>
    MesdResilience,
}

/// <summary>One setup of a scenario: its display name and how its client process builds the client.</summary>
/// <remarks>
/// <see cref="NoFactoryLoggers"/> removes the factory's own logging handlers from a factory client (<c>RemoveAllLoggers()</c>,
/// a user's choice): what the factory's logging costs per request, told apart from what the handler added to it costs.
/// </remarks>
internal sealed record SetupSpec(string Name, SetupKind Kind, string Uri, string? Policy = null, bool Hedged = false, double? HedgeDelayMs = null, double? MaxHedgeRatio = null,
    bool NoFactoryLoggers = false)
{
    /// <summary>Gets the arguments that make the runner a client process for this setup.</summary>
    public IEnumerable<string> ToArguments(Scenario scenario, IReadOnlyList<string> backendUrls)
    {
        yield return "--child";
        yield return "--kind";
        yield return Kind.ToString();
        yield return "--uri";
        yield return Uri;
        yield return "--callers";
        yield return scenario.Callers.ToString(CultureInfo.InvariantCulture);
        yield return "--backends";
        yield return string.Join(',', backendUrls);
        if (Policy is not null)
        {
            yield return "--policy";
            yield return Policy;
        }

        if (Hedged)
        {
            yield return "--hedged";
            if (HedgeDelayMs is { } delay)
            {
                yield return "--hedge-delay-ms";
                yield return delay.ToString(CultureInfo.InvariantCulture);
            }

            if (MaxHedgeRatio is { } ratio)
            {
                yield return "--max-hedge-ratio";
                yield return ratio.ToString(CultureInfo.InvariantCulture);
            }
        }

        if (NoFactoryLoggers)
        {
            yield return "--no-factory-loggers";
        }

        if (scenario.Protocols == Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http2)
        {
            yield return "--h2";
        }
    }
}

/// <summary>
/// The runner as one setup's client process: it builds that one client from a fresh process state (JIT, GC heap, thread
/// pool, connection pools), then answers the parent's commands on standard input, one line each, with one line starting
/// with <c>@</c> on standard output. It exits when its standard input closes, so it never outlives the parent.
/// </summary>
/// <remarks>
/// Commands: <c>warm</c> (windows of load until throughput is steady: connections, estimates, JIT),
/// <c>run &lt;seconds&gt; &lt;max requests&gt;</c> (one measured window; the answer is the <see cref="RunResult"/> as JSON).
/// </remarks>
internal static class SetupChild
{
    public static async Task<int> RunAsync(string[] args)
    {
        SetupKind? kind = null;
        string? uri = null;
        string? policy = null;
        var callers = 0;
        var hedged = false;
        var noFactoryLoggers = false;
        double? hedgeDelayMs = null;
        double? maxHedgeRatio = null;
        var http2 = false;
        var backends = Array.Empty<string>();
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--kind" when i + 1 < args.Length:
                    kind = Enum.Parse<SetupKind>(args[++i]);
                    break;
                case "--uri" when i + 1 < args.Length:
                    uri = args[++i];
                    break;
                case "--policy" when i + 1 < args.Length:
                    policy = args[++i];
                    break;
                case "--callers" when i + 1 < args.Length:
                    callers = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--backends" when i + 1 < args.Length:
                    backends = args[++i].Split(',', StringSplitOptions.RemoveEmptyEntries);
                    break;
                case "--no-factory-loggers":
                    noFactoryLoggers = true;
                    break;
                case "--hedged":
                    hedged = true;
                    break;
                case "--hedge-delay-ms" when i + 1 < args.Length:
                    hedgeDelayMs = double.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--max-hedge-ratio" when i + 1 < args.Length:
                    maxHedgeRatio = double.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--h2":
                    http2 = true;
                    break;
            }
        }

        if (kind is null || uri is null || callers is < 1 or > 256 || backends.Length == 0 || (kind == SetupKind.Lodestar && policy is null)
            || backends.Append(uri).Any(u => !u.StartsWith("http://127.0.0.1:", StringComparison.Ordinal) && !u.StartsWith("http://svc/", StringComparison.Ordinal)))
        {
            await Console.Error.WriteLineAsync("usage: --child --kind Plain|PlainRotated|Factory|Lodestar|Mesd|MesdResilience --uri <url> --callers <1-256> --backends http://127.0.0.1:<port>,... [--policy <name>] [--hedged [--hedge-delay-ms <ms>] [--max-hedge-ratio <0-1>]] [--no-factory-loggers] [--h2] (loopback only)");
            return 2;
        }

        var settings = backends.Select((b, i) => new KeyValuePair<string, string?>($"Lodestar:Services:svc:Endpoints:{i}", b))
            .Concat(backends.Select((b, i) => new KeyValuePair<string, string?>($"Services:svc:http:{i}", b["http://".Length..])))
            .Append(new KeyValuePair<string, string?>("Lodestar:LoadBalancing:Defaults:HashKeyHeader", "X-User"));
        // SCENARIO_-prefixed environment variables reach every client's configuration, for an A/B run of one setting
        // (SCENARIO_Lodestar__RetireRemovedConnections=false turns the connection tracking off).
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(settings).AddEnvironmentVariables("SCENARIO_").Build());
        services.AddLogging();
        services.AddServiceDiscovery();
        switch (kind)
        {
            case SetupKind.Lodestar:
                var lodestarClient = services.AddHttpClient("client");
                if (noFactoryLoggers)
                {
                    lodestarClient.RemoveAllLoggers();
                }

                lodestarClient.AddLodestar(o =>
                {
                    o.Policy = policy!;
                    if (hedged)
                    {
                        // One option group a user turns on: hedge a request whose first attempt is slower than the service's p98,
                        // at most 2 % of requests (the percentile's complement) however fast latencies move (--max-hedge-ratio: another cap).
                        o.Hedging.Enabled = true;
                        o.Hedging.DelayPercentile = 0.98;
                        o.Hedging.MaxHedgeRatio = maxHedgeRatio ?? 0.02;
                        if (hedgeDelayMs is { } delay)
                        {
                            // A fixed delay in place of the percentile (--hedge-delay-ms), to tell the percentile's cost from the round's.
                            o.Hedging.DelayPercentile = null;
                            o.Hedging.Delay = TimeSpan.FromMilliseconds(delay);
                        }
                    }
                });
                break;
            case SetupKind.Factory:
                var factoryClient = services.AddHttpClient("client");
                if (noFactoryLoggers)
                {
                    factoryClient.RemoveAllLoggers();
                }

                break;
            case SetupKind.Mesd:
                services.AddHttpClient("client").AddServiceDiscovery();
                break;
            case SetupKind.MesdResilience:
                services.AddHttpClient("client").AddStandardResilienceHandler();
                services.AddHttpClient("client").AddServiceDiscovery();
                break;
        }

        // Ctrl+C in a terminal signals the whole process group: the parent decides when this process ends (it closes the
        // standard input or kills it), so that it can stop everything in order.
        using var ignoreInterrupt = System.Runtime.InteropServices.PosixSignalRegistration.Create(
            System.Runtime.InteropServices.PosixSignal.SIGINT, static context => context.Cancel = true);
        await using var provider = services.BuildServiceProvider();
        using var client = kind is SetupKind.Plain or SetupKind.PlainRotated
            ? new HttpClient(new System.Net.Http.SocketsHttpHandler
            {
                PooledConnectionLifetime = TimeSpan.FromMinutes(2),
                EnableMultipleHttp2Connections = true,
                ConnectTimeout = TimeSpan.FromSeconds(3),
            })
            : provider.GetRequiredService<IHttpClientFactory>().CreateClient("client");
        // The rotating clients send to every backend in turn; every other client to its one URI.
        string[] uris = kind is SetupKind.PlainRotated or SetupKind.Factory ? [.. backends.Select(b => b + "/")] : [uri];
        Console.WriteLine("@ready");
        while (await Console.In.ReadLineAsync() is { } line)
        {
            var command = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            switch (command)
            {
                case ["warm"]:
                    var windows = await Load.WarmUntilSteadyAsync(client, uris, http2, callers, CancellationToken.None);
                    Console.WriteLine("@warmed " + windows.ToString(CultureInfo.InvariantCulture));
                    break;
                case ["run", var seconds, var max]:
                    var run = await Load.RunAsync(
                        client,
                        uris,
                        http2,
                        callers,
                        TimeSpan.FromSeconds(Math.Clamp(double.Parse(seconds, CultureInfo.InvariantCulture), 0.1, 60)),
                        Math.Clamp(int.Parse(max, CultureInfo.InvariantCulture), 1, 10_000_000),
                        CancellationToken.None);
                    Console.WriteLine("@run " + JsonSerializer.Serialize(run));
                    break;
                default:
                    Console.WriteLine("@error unknown command: " + line);
                    break;
            }
        }

        return 0;
    }
}
