using System.Net;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Lodestar.Grpc.Tests.Protos;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Lodestar.Grpc.Tests.Infrastructure;

/// <summary>
/// A real Grpc.AspNetCore server on 127.0.0.1 (HTTP/2 only: h2c, or TLS with a test certificate). Every reply names
/// the instance; delay and failure status are adjustable while it runs.
/// </summary>
internal sealed class GrpcBackend : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _calls;
    private int _disposed;

    private GrpcBackend(string name, WebApplication app)
    {
        Name = name;
        _app = app;
    }

    public string Name { get; }

    public int Port { get; private set; }

    public string Address => $"127.0.0.1:{Port}";

    /// <summary>Gets the number of calls received (unary and streaming).</summary>
    public int Calls => Volatile.Read(ref _calls);

    /// <summary>Forgets the calls received so far.</summary>
    public void ResetCalls() => Volatile.Write(ref _calls, 0);

    /// <summary>Gets or sets a delay before each answer.</summary>
    public TimeSpan Delay { get; set; }

    /// <summary>Gets or sets the status every call fails with (unary: before any message, so Trailers-Only; streaming: after the first message, so in trailers).</summary>
    public StatusCode? FailWith { get; set; }

    /// <summary>Gets the gate held streams wait on.</summary>
    public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Gets a signal set once a held stream has sent its first message.</summary>
    public TaskCompletionSource Holding { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static async Task<GrpcBackend> StartAsync(string name, X509Certificate2? certificate = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l =>
        {
            l.Protocols = HttpProtocols.Http2;
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
        var backend = new GrpcBackend(name, app);
        holder.Backend = backend;
        app.MapGrpcService<EchoService>();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        backend.Port = new Uri(address).Port;
        return backend;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Release.TrySetResult();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(stop.Token);
        await _app.DisposeAsync();
    }

    /// <summary>Stops the server at once, cutting open streams (an instance that goes away).</summary>
    public async Task KillAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        using var stop = new CancellationTokenSource(TimeSpan.Zero);
        try
        {
            await _app.StopAsync(stop.Token);
        }
        catch (OperationCanceledException)
        {
        }

        await _app.DisposeAsync();
    }

    private sealed class Holder
    {
        public GrpcBackend? Backend { get; set; }
    }

    private sealed class EchoService(Holder holder) : Echo.EchoBase
    {
        private readonly GrpcBackend owner = holder.Backend!;

        public override async Task<EchoReply> Unary(EchoRequest request, ServerCallContext context)
        {
            Interlocked.Increment(ref owner._calls);
            if (owner.Delay > TimeSpan.Zero)
            {
                await Task.Delay(owner.Delay, context.CancellationToken);
            }

            if (owner.FailWith is { } status)
            {
                throw new RpcException(new Status(status, $"{owner.Name} fails"));
            }

            return new EchoReply { Instance = owner.Name };
        }

        public override async Task Stream(StreamRequest request, IServerStreamWriter<EchoReply> responseStream, ServerCallContext context)
        {
            Interlocked.Increment(ref owner._calls);
            for (var i = 0; i < Math.Max(1, request.Count); i++)
            {
                await responseStream.WriteAsync(new EchoReply { Instance = owner.Name, Sequence = i });
                if (i == 0 && owner.FailWith is { } status)
                {
                    throw new RpcException(new Status(status, $"{owner.Name} fails mid-stream"));
                }

                if (i == 0 && request.Hold)
                {
                    owner.Holding.TrySetResult();
                    await owner.Release.Task.WaitAsync(context.CancellationToken);
                }
            }
        }
    }
}
