using System.Diagnostics;
using System.Globalization;
using System.Net;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Balancer;
using Grpc.Net.Client.Configuration;
using Lodestar.Benchmarks.Grpc.Protos;
using Lodestar.Grpc;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Lodestar.Benchmarks.Grpc;

/// <summary>
/// Tail latency of unary gRPC calls over five loopback Grpc.AspNetCore servers answering in 5 ms, one of them ten times
/// slower, with 8 and then 20 closed-loop callers: grpc-dotnet's own <c>round_robin</c> over a static resolver, and the
/// <c>lodestar:///</c> resolver with <c>lodestar_peak_ewma</c> and <c>lodestar_least_request</c>, side by side in one
/// run. Each setup runs twice, the second pass in reverse order, each run on a fresh channel after a warm-up; the load
/// average is printed with every run. Bounded in time and call count.
/// </summary>
/// <remarks>
/// <c>dotnet run -c Release --project bench/Lodestar.Benchmarks -- grpc-tail [--duration 3]</c>
/// </remarks>
internal static class GrpcTailScenario
{
    private const int Servers = 5;
    private const double DelayMs = 5;
    private const double SlowFactor = 10;
    private const int MaxCallsPerRun = 1_000_000;
    private const string RoundRobin = "grpc round_robin (static)";

    public static async Task<int> RunAsync(string[] args)
    {
        var seconds = 3.0;
        for (var i = 0; i < args.Length - 1; i++)
        {
            if (args[i] == "--duration")
            {
                seconds = double.Parse(args[++i], CultureInfo.InvariantCulture);
            }
        }

        var duration = TimeSpan.FromSeconds(Math.Clamp(seconds, 1, 30));
        var servers = new List<WebApplication>();
        try
        {
            var ports = new List<int>();
            for (var i = 0; i < Servers; i++)
            {
                var delay = TimeSpan.FromMilliseconds(DelayMs * (i == Servers - 1 ? SlowFactor : 1));
                var (app, port) = await StartServerAsync($"b{i}", delay);
                servers.Add(app);
                ports.Add(port);
            }

            var slow = $"b{Servers - 1}";
            var configuration = new ConfigurationBuilder()
                .AddInMemoryCollection(ports.Select((p, i) => new KeyValuePair<string, string?>($"Lodestar:Services:echo:Endpoints:{i}", $"127.0.0.1:{p}")))
                .Build();
            var services = new ServiceCollection();
            services.AddSingleton<IConfiguration>(configuration);
            services.AddLogging();
            services.AddLodestarGrpc();
            services.AddSingleton<ResolverFactory>(new StaticResolverFactory(_ => ports.Select(p => new BalancerAddress("127.0.0.1", p))));
            await using var provider = services.BuildServiceProvider();

            string[] setups = [RoundRobin, LodestarGrpcPolicies.PeakEwma, LodestarGrpcPolicies.LeastRequest];
            Console.WriteLine($"{Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}");
            Console.WriteLine($"{Servers} Grpc.AspNetCore servers (h2c) at {DelayMs} ms, {slow} {SlowFactor}x slower; {duration.TotalSeconds} s per run");
            foreach (var callers in new[] { 8, 20 })
            {
                Console.WriteLine();
                Console.WriteLine($"{callers} callers; load average {LoadAverage()}");
                Console.WriteLine($"{"pass",-6} {"setup",-28} {"calls/s",8} {"p50 ms",7} {"p99 ms",7} {"p99.9",7} {"slow %",7} {"errors",6}  load average");
                var results = new List<(string Setup, double P50, double P99)>();
                foreach (var (pass, order) in new[] { ("1", setups), ("2 rev", setups.Reverse().ToArray()) })
                {
                    foreach (var setup in order)
                    {
                        using var channel = CreateChannel(setup, provider);
                        var client = new BenchEcho.BenchEchoClient(channel);
                        for (var i = 0; i < 100; i++)
                        {
                            await client.UnaryAsync(new BenchRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
                        }

                        var load = LoadAverage();
                        var run = await LoadAsync(client, callers, duration, slow);
                        results.Add((setup, run.P50, run.P99));
                        Console.WriteLine($"{pass,-6} {setup,-28} {run.PerSecond,8:F0} {run.P50,7:F2} {run.P99,7:F2} {run.P999,7:F2} {run.SlowShare,7:F2} {run.Errors,6}  {load}");
                    }
                }

                foreach (var group in results.GroupBy(r => r.Setup))
                {
                    Console.WriteLine($"  mean of both passes  {group.Key,-28} p50 {group.Average(r => r.P50),6:F2} ms  p99 {group.Average(r => r.P99),6:F2} ms");
                }
            }

            return 0;
        }
        finally
        {
            foreach (var server in servers)
            {
                await server.StopAsync();
                await server.DisposeAsync();
            }
        }
    }

    private static GrpcChannel CreateChannel(string setup, IServiceProvider services)
        => setup == RoundRobin
            ? GrpcChannel.ForAddress("static:///echo", new GrpcChannelOptions
            {
                Credentials = ChannelCredentials.Insecure,
                ServiceProvider = services,
                ServiceConfig = new ServiceConfig { LoadBalancingConfigs = { new RoundRobinConfig() } },
            })
            : GrpcChannel.ForAddress("lodestar:///echo", new GrpcChannelOptions { Credentials = ChannelCredentials.Insecure }.UseLodestar(services, setup));

    private static async Task<(double PerSecond, double P50, double P99, double P999, double SlowShare, int Errors)> LoadAsync(
        BenchEcho.BenchEchoClient client, int callers, TimeSpan duration, string slow)
    {
        var started = Stopwatch.GetTimestamp();
        var remaining = MaxCallsPerRun;
        var errors = 0;
        var slowCalls = 0;
        var perCaller = await Task.WhenAll(Enumerable.Range(0, callers).Select(_ => Task.Run(async () =>
        {
            var latencies = new List<double>(4096);
            while (Stopwatch.GetElapsedTime(started) < duration && Interlocked.Decrement(ref remaining) >= 0)
            {
                var call = Stopwatch.GetTimestamp();
                try
                {
                    var reply = await client.UnaryAsync(new BenchRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
                    latencies.Add(Stopwatch.GetElapsedTime(call).TotalMilliseconds);
                    if (reply.Instance == slow)
                    {
                        Interlocked.Increment(ref slowCalls);
                    }
                }
                catch (RpcException)
                {
                    Interlocked.Increment(ref errors);
                }
            }

            return latencies;
        })));
        var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var all = perCaller.SelectMany(l => l).Order().ToArray();
        return (all.Length / elapsed, Percentile(all, 0.50), Percentile(all, 0.99), Percentile(all, 0.999), all.Length == 0 ? 0 : 100.0 * slowCalls / all.Length, errors);
    }

    private static double Percentile(double[] sorted, double quantile)
        => sorted.Length == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(quantile * sorted.Length) - 1, 0, sorted.Length - 1)];

    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "n/a";
        }
    }

    private static async Task<(WebApplication App, int Port)> StartServerAsync(string name, TimeSpan delay)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(new SlowEchoService(name, delay));
        var app = builder.Build();
        app.MapGrpcService<SlowEchoService>();
        await app.StartAsync();
        return (app, new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port);
    }

    private sealed class SlowEchoService(string name, TimeSpan delay) : BenchEcho.BenchEchoBase
    {
        private readonly BenchReply _reply = new() { Instance = name };

        public override async Task<BenchReply> Unary(BenchRequest request, ServerCallContext context)
        {
            await Task.Delay(delay, context.CancellationToken);
            return _reply;
        }
    }
}
