using Lodestar.Etcd.Client.Internal;
using Lodestar.Etcd.Discovery.Internal;
using Lodestar.Testing;
using Microsoft.Extensions.Logging;

namespace Lodestar.Etcd.Tests.Infrastructure;

/// <summary>
/// One etcd source driven directly, outside DI: its own client (on the system clock, so request timeouts are real),
/// the source on the clock a test chooses, every log line captured, and a recording observer. Disposing stops the loop.
/// </summary>
internal sealed class SourceRig : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private Task _run = Task.CompletedTask;

    private readonly ILoggerFactory _loggers;

    private SourceRig(EtcdOptions options, EtcdClient client, EtcdEndpointSource source, CapturingLoggerProvider logs, ILoggerFactory loggers)
    {
        _loggers = loggers;
        Options = options;
        Client = client;
        Source = source;
        Logs = logs;
    }

    public EtcdOptions Options { get; }

    public EtcdClient Client { get; }

    public EtcdEndpointSource Source { get; }

    public CapturingLoggerProvider Logs { get; }

    public RecordingObserver Observer { get; } = new();

    /// <summary>Creates a rig for service <paramref name="service"/>; the backoff starts at 100 ms and is capped at 1 s unless <paramref name="configure"/> says otherwise.</summary>
    public static SourceRig Create(string address, TimeProvider clock, Action<EtcdOptions>? configure = null, Func<double>? random = null, string service = "orders")
    {
        var options = new EtcdOptions { Address = address };
        options.Backoff.InitialDelay = TimeSpan.FromMilliseconds(100);
        options.Backoff.MaxDelay = TimeSpan.FromSeconds(1);
        configure?.Invoke(options);
        var logs = new CapturingLoggerProvider();
        var factory = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        var client = new EtcdClient(options, TimeProvider.System, factory.CreateLogger<EtcdClient>());
        var source = new EtcdEndpointSource(service, client, options, clock, factory.CreateLogger<EtcdEndpointSource>(), random);
        return new SourceRig(options, client, source, logs, factory);
    }

    /// <summary>Starts the loop.</summary>
    public SourceRig Start()
    {
        _run = Source.RunAsync(Observer, _stop.Token);
        return this;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _run.WaitAsync(TimeSpan.FromSeconds(10));
        Client.Dispose();
        _loggers.Dispose();
        _stop.Dispose();
    }
}
