using System.Net;
using Grpc.Core;
using Lodestar.Xds.Tests.Protos;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Lodestar.Xds.Tests.Infrastructure;

/// <summary>A real Grpc.AspNetCore server on 127.0.0.1 (h2c) whose every reply names it; counts the calls it served.</summary>
internal sealed class GreeterBackend : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _calls;
    private int _waiting;

    private GreeterBackend(string name, WebApplication app)
    {
        Name = name;
        _app = app;
    }

    public string Name { get; }

    public int Port { get; private set; }

    /// <summary>Gets or sets a gate every call waits on before it answers, or <see langword="null"/> to answer at once.</summary>
    public TaskCompletionSource? Gate { get; set; }

    /// <summary>Gets or sets the status the next <see cref="FailuresLeft"/> calls fail with, or <see langword="null"/> to answer.</summary>
    public StatusCode? Failure { get; set; }

    /// <summary>Gets or sets how many more calls fail with <see cref="Failure"/>; negative for every call.</summary>
    public int FailuresLeft { get; set; } = -1;

    /// <summary>Gets or sets whether a failing call sends its response headers first, so its status travels in the trailers.</summary>
    public bool FailAfterHeaders { get; set; }

    /// <summary>Gets or sets the <c>grpc-retry-pushback-ms</c> a failing call sends, or <see langword="null"/> for none.</summary>
    public string? Pushback { get; set; }

    /// <summary>Gets the deadline the server read for the last call (from its <c>grpc-timeout</c>), <see cref="DateTime.MaxValue"/> for none.</summary>
    public DateTime LastDeadline { get; private set; }

    /// <summary>Gets the <c>grpc-previous-rpc-attempts</c> header of the last call, or <see langword="null"/> when it had none.</summary>
    public string? LastPreviousAttempts { get; private set; }

    /// <summary>Gets the number of calls waiting at <see cref="Gate"/>.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>Gets the number of calls served.</summary>
    public int Calls => Volatile.Read(ref _calls);

    public static async Task<GreeterBackend> StartAsync(string name)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));
        builder.Services.AddGrpc();
        var holder = new Holder();
        builder.Services.AddSingleton(holder);
        var app = builder.Build();
        var backend = new GreeterBackend(name, app);
        holder.Backend = backend;
        app.MapGrpcService<GreeterService>();
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

    private bool TryTakeFailure()
    {
        lock (_app)
        {
            if (FailuresLeft == 0)
            {
                return false;
            }

            if (FailuresLeft > 0)
            {
                FailuresLeft--;
            }

            return true;
        }
    }

    private sealed class Holder
    {
        public GreeterBackend? Backend { get; set; }
    }

    private sealed class GreeterService(Holder holder) : Greeter.GreeterBase
    {
        private readonly GreeterBackend _owner = holder.Backend!;

        public override async Task<HelloReply> Hello(HelloRequest request, ServerCallContext context)
        {
            Interlocked.Increment(ref _owner._calls);
            _owner.LastDeadline = context.Deadline;
            _owner.LastPreviousAttempts = context.RequestHeaders.GetValue("grpc-previous-rpc-attempts");
            if (_owner.Failure is { } failure && _owner.TryTakeFailure())
            {
                if (_owner.Pushback is { } pushback)
                {
                    context.ResponseTrailers.Add("grpc-retry-pushback-ms", pushback);
                }

                if (_owner.FailAfterHeaders)
                {
                    await context.WriteResponseHeadersAsync(new Metadata());
                }

                throw new RpcException(new Status(failure, $"backend {_owner.Name} fails"));
            }

            if (_owner.Gate is { } gate)
            {
                Interlocked.Increment(ref _owner._waiting);
                try
                {
                    await gate.Task.WaitAsync(context.CancellationToken);
                }
                finally
                {
                    Interlocked.Decrement(ref _owner._waiting);
                }
            }

            return new HelloReply { Instance = _owner.Name };
        }
    }
}
