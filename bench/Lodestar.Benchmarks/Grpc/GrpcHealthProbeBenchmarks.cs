using System.Net;
using BenchmarkDotNet.Attributes;
using Grpc.Health.V1;
using Grpc.HealthCheck;
using Grpc.Net.Client;
using Lodestar.Endpoints;
using Lodestar.Grpc.Health.Internal;
using Lodestar.Health;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Lodestar.Benchmarks.Grpc;

/// <summary>
/// One <c>grpc.health.v1.Health/Check</c> against a loopback Grpc.AspNetCore server (h2c): the generated client called
/// directly on a kept channel, against Lodestar's gRPC health probe (which keeps its own channel per endpoint). The
/// difference in bytes is what the probe adds per check.
/// </summary>
[MemoryDiagnoser]
public class GrpcHealthProbeBenchmarks
{
    private static readonly HealthCheckRequest s_request = new();
    private WebApplication _server = null!;
    private GrpcChannel _channel = null!;
    private global::Grpc.Health.V1.Health.HealthClient _client = null!;
    private GrpcHealthProbe _probe = null!;
    private DiscoveredEndpoint _endpoint = null!;

    [GlobalSetup]
    public async Task SetupAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        var health = new HealthServiceImpl();
        health.SetStatus(string.Empty, HealthCheckResponse.Types.ServingStatus.Serving);
        builder.Services.AddSingleton(health);
        _server = builder.Build();
        _server.MapGrpcService<HealthServiceImpl>();
        await _server.StartAsync();
        var port = new Uri(_server.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port;
        _endpoint = DiscoveredEndpoint.Create("127.0.0.1", port);
        _channel = GrpcChannel.ForAddress($"http://{_endpoint.Address}");
        _client = new global::Grpc.Health.V1.Health.HealthClient(_channel);
        _probe = new GrpcHealthProbe(new HealthCheckOptions { Protocol = HealthCheckProtocols.Grpc });
        for (var i = 0; i < 30; i++)
        {
            await _client.CheckAsync(s_request);
            await _probe.ProbeAsync(_endpoint, CancellationToken.None);
        }
    }

    [Benchmark(Baseline = true)]
    public async Task<bool> GeneratedClientCheck()
        => (await _client.CheckAsync(s_request)).Status == HealthCheckResponse.Types.ServingStatus.Serving;

    [Benchmark]
    public async Task<bool> LodestarGrpcProbe() => (await _probe.ProbeAsync(_endpoint, CancellationToken.None)).IsHealthy;

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        _probe.Dispose();
        _channel.Dispose();
        await _server.StopAsync();
        await _server.DisposeAsync();
    }
}
