using System.Diagnostics;
using System.Globalization;
using System.Net;
using Lodestar.Dns.Resolver.Internal;
using Lodestar.Testing.Dns;
using Microsoft.Extensions.Logging.Abstractions;

namespace Lodestar.Benchmarks.Dns;

/// <summary>
/// Queries per second, side by side in one run: Lodestar's stub resolver against a local dnsmasq (a real UDP round
/// trip per query, no cache), and System.Net.Dns (getaddrinfo) on a name the system answers from /etc/hosts.
/// Usage: <c>dns-qps [seconds per case, default 5] [concurrency, default 8]</c>.
/// </summary>
internal static class DnsQpsScenario
{
    public static async Task<int> RunAsync(string[] args)
    {
        var seconds = args.Length > 0 ? double.Parse(args[0], CultureInfo.InvariantCulture) : 5;
        var concurrency = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 8;
        var duration = TimeSpan.FromSeconds(seconds);
        await using var dns = await DnsmasqServer.StartAsync(hostsLines: ["127.0.0.2 web.lodestar.test"], ttlSeconds: 30);
        var resolver = new DnsStubResolver(
            new DnsResolverSettings { Servers = [dns.EndPoint], Timeout = TimeSpan.FromSeconds(2), Attempts = 1 },
            TimeProvider.System, NullLogger.Instance);

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"DNS queries per second, {seconds:0.#} s per case, {Environment.ProcessorCount} CPUs, .NET {Environment.Version}"));
        Console.WriteLine("| Case | Concurrency | Queries | Queries/s | Mean latency (µs) |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        foreach (var parallel in new[] { 1, concurrency })
        {
            await MeasureAsync("Lodestar stub resolver → dnsmasq (UDP, A web.lodestar.test)", parallel, duration,
                async () => (await resolver.LookupAbsoluteAsync("web.lodestar.test", DnsRecordType.A, CancellationToken.None)).Records.Count == 1);
            await MeasureAsync("System.Net.Dns.GetHostAddressesAsync(\"localhost\") (/etc/hosts)", parallel, duration,
                async () => (await System.Net.Dns.GetHostAddressesAsync("localhost")).Length > 0);
        }

        return 0;
    }

    private static async Task MeasureAsync(string name, int parallel, TimeSpan duration, Func<Task<bool>> query)
    {
        // Warm up, then run `parallel` loops for `duration`; every loop is bounded by the deadline.
        for (var i = 0; i < 200; i++)
        {
            await query();
        }

        long count = 0;
        var watch = Stopwatch.StartNew();
        var loops = Enumerable.Range(0, parallel).Select(_ => Task.Run(async () =>
        {
            while (watch.Elapsed < duration)
            {
                if (!await query())
                {
                    throw new InvalidOperationException($"{name}: wrong answer");
                }

                Interlocked.Increment(ref count);
            }
        }));
        await Task.WhenAll(loops);
        var elapsed = watch.Elapsed.TotalSeconds;
        var qps = count / elapsed;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {parallel} | {count} | {qps:N0} | {parallel * 1_000_000 / qps:N1} |"));
    }
}
