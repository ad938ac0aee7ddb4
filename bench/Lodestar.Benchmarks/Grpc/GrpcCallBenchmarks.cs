using System.Net;
using BenchmarkDotNet.Attributes;
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
/// One unary gRPC call over three loopback Grpc.AspNetCore servers (h2c): grpc-dotnet's own round_robin over a static
/// resolver, the Lodestar resolver with the <c>lodestar_round_robin</c> balancer, and core's handler path
/// (<c>http://echo</c> through the Lodestar <see cref="HttpClient"/> handler, weighted round robin).
/// </summary>
[MemoryDiagnoser]
public class GrpcCallBenchmarks
{
    private readonly List<WebApplication> _servers = [];
    private ServiceProvider _services = null!;
    private GrpcChannel _static = null!;
    private GrpcChannel _balanced = null!;
    private BenchEcho.BenchEchoClient _staticClient = null!;
    private BenchEcho.BenchEchoClient _balancedClient = null!;
    private BenchEcho.BenchEchoClient _handlerClient = null!;

    [GlobalSetup]
    public async Task SetupAsync()
    {
        var ports = new List<int>();
        for (var i = 0; i < 3; i++)
        {
            ports.Add(await StartServerAsync($"b{i}"));
        }

        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(ports.Select((p, i) => new KeyValuePair<string, string?>($"Lodestar:Services:echo:Endpoints:{i}", $"127.0.0.1:{p}")))
            .Build();
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddLogging();
        services.AddLodestarGrpc();
        services.AddSingleton<ResolverFactory>(new StaticResolverFactory(_ => ports.Select(p => new BalancerAddress("127.0.0.1", p))));
        services.AddGrpcClient<BenchEcho.BenchEchoClient>("handler", o => o.Address = new Uri("http://echo"))
            .AddLodestar(o => o.Policy = Lodestar.LoadBalancing.LoadBalancingPolicies.WeightedRoundRobin);
        _services = services.BuildServiceProvider();

        _static = GrpcChannel.ForAddress("static:///echo", new GrpcChannelOptions
        {
            Credentials = ChannelCredentials.Insecure,
            ServiceProvider = _services,
            ServiceConfig = new ServiceConfig { LoadBalancingConfigs = { new RoundRobinConfig() } },
        });
        _balanced = GrpcChannel.ForAddress("lodestar:///echo", new GrpcChannelOptions { Credentials = ChannelCredentials.Insecure }
            .UseLodestar(_services, LodestarGrpcPolicies.RoundRobin));
        _staticClient = new BenchEcho.BenchEchoClient(_static);
        _balancedClient = new BenchEcho.BenchEchoClient(_balanced);
        _handlerClient = _services.GetRequiredService<global::Grpc.Net.ClientFactory.GrpcClientFactory>().CreateClient<BenchEcho.BenchEchoClient>("handler");

        // Warm every connection before measuring.
        for (var i = 0; i < 30; i++)
        {
            await _staticClient.UnaryAsync(new BenchRequest());
            await _balancedClient.UnaryAsync(new BenchRequest());
            await _handlerClient.UnaryAsync(new BenchRequest());
        }
    }

    [Benchmark(Baseline = true)]
    public async Task<string> GrpcRoundRobinStaticResolver() => (await _staticClient.UnaryAsync(new BenchRequest())).Instance;

    [Benchmark]
    public async Task<string> LodestarResolverAndBalancer() => (await _balancedClient.UnaryAsync(new BenchRequest())).Instance;

    [Benchmark]
    public async Task<string> LodestarHandlerPath() => (await _handlerClient.UnaryAsync(new BenchRequest())).Instance;

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        _static.Dispose();
        _balanced.Dispose();
        await _services.DisposeAsync();
        foreach (var server in _servers)
        {
            await server.StopAsync();
            await server.DisposeAsync();
        }
    }

    private async Task<int> StartServerAsync(string name)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(new EchoService(name));
        var app = builder.Build();
        app.MapGrpcService<EchoService>();
        await app.StartAsync();
        _servers.Add(app);
        return new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port;
    }

    private sealed class EchoService(string name) : BenchEcho.BenchEchoBase
    {
        private readonly BenchReply _reply = new() { Instance = name };

        public override Task<BenchReply> Unary(BenchRequest request, ServerCallContext context) => Task.FromResult(_reply);
    }
}
