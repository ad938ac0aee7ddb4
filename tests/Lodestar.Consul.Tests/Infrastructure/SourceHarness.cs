using Lodestar.Consul.Discovery.Internal;
using Lodestar.Consul.Internal;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Testing;
using Lodestar.Testing.Consul;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Lodestar.Consul.Tests.Infrastructure;

/// <summary>
/// One Consul source run directly against the fake agent, on a clock the test drives (a <see cref="RecordingTimeProvider"/>
/// by default) and with scripted jitter, recording every snapshot and error. The agent keeps real time.
/// </summary>
internal sealed class SourceHarness : IAsyncDisposable
{
    private readonly ServiceProvider _services;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _run;

    private SourceHarness(ServiceProvider services, TimeProvider clock, CapturingLoggerProvider logs, string service, Func<double> random)
    {
        _services = services;
        Clock = clock;
        Logs = logs;
        Api = services.GetRequiredService<ConsulApi>();
        Source = new ConsulEndpointSource(service, Api, clock, services.GetRequiredService<ILoggerFactory>().CreateLogger("Lodestar.Consul"), random);
        _run = Source.RunAsync(Observer, _stop.Token);
    }

    public TimeProvider Clock { get; }

    /// <summary>Gets the clock as a recording clock; throws when the harness runs on real time.</summary>
    public RecordingTimeProvider Recording => (RecordingTimeProvider)Clock;

    public CapturingLoggerProvider Logs { get; }

    public ConsulApi Api { get; }

    public ConsulEndpointSource Source { get; }

    public RecordingObserver Observer { get; } = new();

    public ConsulOptions Options => Api.Options;

    /// <summary>Starts a source for <paramref name="service"/> with the jitter fixed at <paramref name="random"/> (a half by default).</summary>
    public static SourceHarness Start(FakeConsulAgent agent, Action<ConsulOptions>? configure = null, TimeProvider? clock = null, double random = 0.5,
        string service = "orders")
    {
        var logs = new CapturingLoggerProvider();
        var collection = new ServiceCollection();
        collection.AddLogging(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        collection.AddLodestarCore().AddConsul(o =>
        {
            o.Address = agent.Address;
            configure?.Invoke(o);
        });
        return new SourceHarness(collection.BuildServiceProvider(), clock ?? new RecordingTimeProvider(), logs, service, () => random);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _run;
        _stop.Dispose();
        await _services.DisposeAsync();
    }

    /// <summary>Records what the source reports.</summary>
    public sealed class RecordingObserver : IEndpointObserver
    {
        private readonly Lock _gate = new();
        private readonly List<IReadOnlyList<DiscoveredEndpoint>> _sets = [];
        private readonly List<Exception> _errors = [];

        public IReadOnlyList<IReadOnlyList<DiscoveredEndpoint>> Sets
        {
            get
            {
                lock (_gate)
                {
                    return [.. _sets];
                }
            }
        }

        public IReadOnlyList<Exception> Errors
        {
            get
            {
                lock (_gate)
                {
                    return [.. _errors];
                }
            }
        }

        /// <summary>Gets whether a set has been published.</summary>
        public bool HasSet => Sets.Count > 0;

        /// <summary>Gets the ports of the last published set, sorted; empty before the first.</summary>
        public int[] Ports
        {
            get
            {
                lock (_gate)
                {
                    return _sets.Count == 0 ? [] : [.. _sets[^1].Select(e => e.Port).Order()];
                }
            }
        }

        public void OnEndpoints(IReadOnlyList<DiscoveredEndpoint> endpoints)
        {
            lock (_gate)
            {
                _sets.Add([.. endpoints]);
            }
        }

        public void OnError(Exception error)
        {
            lock (_gate)
            {
                _errors.Add(error);
            }
        }
    }
}
