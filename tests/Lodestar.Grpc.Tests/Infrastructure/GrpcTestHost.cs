using Grpc.Core;
using Grpc.Net.Client;
using Lodestar.Grpc.Tests.Protos;
using Lodestar.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Grpc.Tests.Infrastructure;

/// <summary>
/// A container with Lodestar and its gRPC integration over a reloadable in-memory configuration that declares the
/// <c>echo</c> service's endpoints, plus the backends behind it.
/// </summary>
internal sealed class GrpcTestHost : IAsyncDisposable
{
    public const string Service = "echo";

    private readonly List<GrpcBackend> _backends;
    private readonly List<GrpcChannel> _channels = [];

    private GrpcTestHost(List<GrpcBackend> backends, MutableConfigurationSource configuration, ServiceProvider services)
    {
        _backends = backends;
        Configuration = configuration;
        Services = services;
    }

    public IReadOnlyList<GrpcBackend> Backends => _backends;

    public MutableConfigurationSource Configuration { get; }

    public ServiceProvider Services { get; }

    /// <summary>Starts <paramref name="count"/> backends and a container whose configuration lists them all.</summary>
    public static async Task<GrpcTestHost> StartAsync(int count, Action<IServiceCollection>? configure = null, System.Security.Cryptography.X509Certificates.X509Certificate2? certificate = null,
        IEnumerable<KeyValuePair<string, string?>>? settings = null)
    {
        var backends = new List<GrpcBackend>();
        for (var i = 0; i < count; i++)
        {
            var backend = await GrpcBackend.StartAsync($"b{i}", certificate);
            backends.Add(backend);
            if (certificate is null)
            {
                // One direct call first: a server's first call is slow (JIT), and a peak-sensitive latency estimate
                // would remember that for a while and skew the balanced calls a test counts.
                using var direct = GrpcChannel.ForAddress($"http://{backend.Address}");
                await new Echo.EchoClient(direct).UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
                backend.ResetCalls();
            }
        }

        var source = new MutableConfigurationSource();
        var config = new ConfigurationBuilder().Add(source).Build();
        var values = backends.Select((b, i) => new KeyValuePair<string, string?>($"Lodestar:Services:{Service}:Endpoints:{i}", b.Address)).ToList();
        values.AddRange(settings ?? []);
        source.Provider.Replace(values);
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(config);
        services.AddLogging();
        services.AddLodestarGrpc();
        configure?.Invoke(services);
        return new GrpcTestHost(backends, source, services.BuildServiceProvider());
    }

    /// <summary>Creates a balanced channel for <c>lodestar:///echo</c> (resolved and balanced through <paramref name="channelServices"/> when given).</summary>
    public Echo.EchoClient CreateClient(string balancer = LodestarGrpcPolicies.RoundRobin, string? client = null, string? hashHeader = null, ChannelCredentials? credentials = null,
        SocketsHttpHandler? handler = null, IServiceProvider? channelServices = null)
    {
        var options = new GrpcChannelOptions { Credentials = credentials ?? ChannelCredentials.Insecure, HttpHandler = handler };
        var channel = GrpcChannel.ForAddress($"lodestar:///{Service}", options.UseLodestar(channelServices ?? Services, balancer, client, hashHeader));
        _channels.Add(channel);
        return new Echo.EchoClient(channel);
    }

    /// <summary>Makes <paramref name="calls"/> unary calls one after another and counts the answers per instance.</summary>
    public static async Task<Dictionary<string, int>> CountUnaryAsync(Echo.EchoClient client, int calls, Metadata? headers = null)
    {
        var counts = new Dictionary<string, int>();
        for (var i = 0; i < calls; i++)
        {
            var reply = await client.UnaryAsync(new EchoRequest(), headers, deadline: DateTime.UtcNow.AddSeconds(10));
            counts[reply.Instance] = counts.GetValueOrDefault(reply.Instance) + 1;
        }

        return counts;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var channel in _channels)
        {
            channel.Dispose();
        }

        await Services.DisposeAsync();
        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }
    }
}
