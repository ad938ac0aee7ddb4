using System.Net;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.HealthCheck;
using Lodestar.Grpc.Tests.Protos;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Lodestar.Grpc.Tests.Infrastructure;

/// <summary>
/// A real Grpc.AspNetCore server on 127.0.0.1 (HTTP/2: h2c, or TLS with a given certificate) serving the echo service
/// and, unless left out, the standard <c>grpc.health.v1.Health</c> service of Grpc.HealthCheck
/// (<see cref="HealthServiceImpl"/>). Counts echo calls, health checks per service name, and TCP connections.
/// </summary>
internal sealed class HealthBackend : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _checks = new();
    private int _calls;
    private int _connections;

    private HealthBackend(string name, WebApplication app)
    {
        Name = name;
        _app = app;
    }

    public string Name { get; }

    public int Port { get; private set; }

    public string Address => $"127.0.0.1:{Port}";

    /// <summary>Gets the health service whose statuses the test sets (<see cref="HealthServiceImpl.SetStatus"/>).</summary>
    public HealthServiceImpl Health { get; } = new();

    /// <summary>Gets or sets the status every health check fails with, or <see langword="null"/> to answer.</summary>
    public Status? FailChecksWith { get; set; }

    /// <summary>Gets or sets whether health checks hang until the caller gives up.</summary>
    public bool HangChecks { get; set; }

    /// <summary>Gets the number of echo calls received.</summary>
    public int Calls => Volatile.Read(ref _calls);

    /// <summary>Gets the number of TCP connections accepted.</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Gets the number of <c>Health/Check</c> calls received for <paramref name="service"/>.</summary>
    public int Checks(string service) => _checks.GetValueOrDefault(service);

    public static async Task<HealthBackend> StartAsync(string name, bool withHealthService = true, X509Certificate2? certificate = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        HealthBackend? backend = null;
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l =>
        {
            l.Protocols = HttpProtocols.Http2;
            l.Use(next => context =>
            {
                Interlocked.Increment(ref backend!._connections);
                return next(context);
            });
            if (certificate is not null)
            {
                l.UseHttps(certificate);
            }
        }));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));
        builder.Services.AddGrpc();
        var holder = new Holder();
        builder.Services.AddSingleton(holder);
        var app = builder.Build();
        backend = new HealthBackend(name, app);
        holder.Backend = backend;
        app.MapGrpcService<EchoService>();
        if (withHealthService)
        {
            app.MapGrpcService<CountingHealthService>();
        }

        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        backend.Port = new Uri(address).Port;
        return backend;
    }

    public async ValueTask DisposeAsync()
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(stop.Token);
        await _app.DisposeAsync();
    }

    private sealed class Holder
    {
        public HealthBackend? Backend { get; set; }
    }

    private sealed class EchoService(Holder holder) : Echo.EchoBase
    {
        public override Task<EchoReply> Unary(EchoRequest request, ServerCallContext context)
        {
            var owner = holder.Backend!;
            Interlocked.Increment(ref owner._calls);
            return Task.FromResult(new EchoReply { Instance = owner.Name });
        }
    }

    /// <summary>Grpc.HealthCheck's implementation, counting each check by service name.</summary>
    private sealed class CountingHealthService(Holder holder) : global::Grpc.Health.V1.Health.HealthBase
    {
        public override async Task<HealthCheckResponse> Check(HealthCheckRequest request, ServerCallContext context)
        {
            var owner = holder.Backend!;
            owner._checks.AddOrUpdate(request.Service, 1, static (_, n) => n + 1);
            if (owner.FailChecksWith is { } status)
            {
                throw new RpcException(status);
            }

            if (owner.HangChecks)
            {
                await Task.Delay(Timeout.InfiniteTimeSpan, context.CancellationToken);
            }

            return await owner.Health.Check(request, context);
        }
    }
}
