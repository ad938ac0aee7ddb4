using Lodestar.Consul.Internal;
using Lodestar.Discovery;
using Lodestar.Registration;
using Microsoft.Extensions.Logging;

namespace Lodestar.Consul.Registration.Internal;

/// <summary>
/// Keeps one registration alive: every third of the TTL it passes the TTL check (or, for an HTTP check, asks whether the
/// agent still knows the service), and registers again when the agent has forgotten it, as it does after a restart
/// without persisted state. Disposing deregisters.
/// </summary>
internal sealed partial class ConsulRegistrationHandle : IServiceRegistrationHandle
{
    private readonly AgentServiceRegistration _body;
    private readonly ConsulApi _api;
    private readonly TimeProvider _timeProvider;
    private readonly Func<double>? _random;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly SemaphoreSlim _deregistering = new(1, 1);
    private Task _loop = Task.CompletedTask;
    private bool _deregistered;
    private int _reregistrations;

    public ConsulRegistrationHandle(ServiceRegistration registration, AgentServiceRegistration body, ConsulApi api, TimeProvider timeProvider,
        Func<double>? random, ILogger logger)
    {
        Registration = registration;
        _body = body;
        _api = api;
        _timeProvider = timeProvider;
        _random = random;
        _logger = logger;
        Interval = TimeSpan.FromTicks(Math.Max(TimeSpan.FromMilliseconds(100).Ticks, registration.Ttl.Ticks / 3));
    }

    public ServiceRegistration Registration { get; }

    /// <summary>Gets how often the registration is refreshed: a third of the TTL, as Consul's docs advise.</summary>
    internal TimeSpan Interval { get; }

    /// <summary>Gets how many times the agent had forgotten the service and it was registered again.</summary>
    internal int Reregistrations => Volatile.Read(ref _reregistrations);

    private bool IsTtlCheck => _body.Check?.TTL is not null;

    public void Start()
    {
        using (ExecutionContext.SuppressFlow())
        {
            _loop = Task.Run(() => KeepAliveAsync(_stopping.Token));
        }
    }

    public async Task DeregisterAsync(CancellationToken cancellationToken)
    {
        await _deregistering.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_deregistered)
            {
                return;
            }

            // Stop heartbeats first: a heartbeat racing the deregistration could register the instance again.
            await StopLoopAsync().ConfigureAwait(false);
            await _api.DeregisterAsync(_body.ID, cancellationToken).ConfigureAwait(false);
            _deregistered = true;
            Log.Deregistered(_logger, _body.Name, _body.ID);
        }
        finally
        {
            _deregistering.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_deregistered)
        {
            using var deadline = new CancellationTokenSource(_api.Options.RequestTimeout, _timeProvider);
            try
            {
                await DeregisterAsync(deadline.Token).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                // Disposal must not throw; DeregisterCriticalServiceAfter removes the instance eventually.
                Log.DeregistrationFailed(_logger, _body.Name, _body.ID, ex.Message);
            }
        }

        await StopLoopAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    /// <summary>Stops heartbeats without deregistering, as a crashed or partitioned process would (for tests).</summary>
    internal async Task AbandonAsync()
    {
        await StopLoopAsync().ConfigureAwait(false);
        _deregistered = true;
    }

    private async Task StopLoopAsync()
    {
        if (!_stopping.IsCancellationRequested)
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
        }

        await _loop.ConfigureAwait(false);
    }

    private async Task KeepAliveAsync(CancellationToken cancellationToken)
    {
        // The heartbeat keeps its own schedule (a third of the TTL); only the retries after a failure back off.
        var backoff = new Backoff(_api.Options.Backoff, _timeProvider, _random);
        var delay = Interval;
        while (true)
        {
            try
            {
                await Task.Delay(delay, _timeProvider, cancellationToken).ConfigureAwait(false);
                var known = IsTtlCheck
                    ? await _api.PassCheckAsync(ConsulServiceRegistrar.CheckIdOf(_body.ID), cancellationToken).ConfigureAwait(false)
                    : await _api.ServiceExistsAsync(_body.ID, cancellationToken).ConfigureAwait(false);
                if (!known)
                {
                    Log.Forgotten(_logger, _body.Name, _body.ID);
                    await _api.RegisterAsync(_body, cancellationToken).ConfigureAwait(false);
                    Interlocked.Increment(ref _reregistrations);
                    Log.Reregistered(_logger, _body.Name, _body.ID);
                }

                backoff.Reset();
                delay = Interval;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // Retry sooner than the interval, but never later: the TTL keeps running while the agent is away.
                var retry = backoff.NextDelay();
                delay = retry < Interval ? retry : Interval;
                Log.HeartbeatFailed(_logger, _body.Name, _body.ID, delay.TotalMilliseconds, ex.Message);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(10, LogLevel.Warning, "Consul no longer knows instance {InstanceId} of service {Service} (agent restarted?); registering it again.", EventName = "ConsulRegistrationForgotten")]
        public static partial void Forgotten(ILogger logger, string service, string instanceId);

        [LoggerMessage(11, LogLevel.Information, "Registered instance {InstanceId} of service {Service} with Consul again.", EventName = "ConsulReregistered")]
        public static partial void Reregistered(ILogger logger, string service, string instanceId);

        [LoggerMessage(12, LogLevel.Warning, "Keeping instance {InstanceId} of service {Service} registered in Consul failed; retrying in {DelayMs} ms: {Error}", EventName = "ConsulHeartbeatFailed")]
        public static partial void HeartbeatFailed(ILogger logger, string service, string instanceId, double delayMs, string error);

        [LoggerMessage(13, LogLevel.Information, "Deregistered instance {InstanceId} of service {Service} from Consul.", EventName = "ConsulHandleDeregistered")]
        public static partial void Deregistered(ILogger logger, string service, string instanceId);

        [LoggerMessage(14, LogLevel.Warning, "Deregistering instance {InstanceId} of service {Service} from Consul failed; Consul removes it after DeregisterCriticalServiceAfter: {Error}", EventName = "ConsulDeregistrationFailed")]
        public static partial void DeregistrationFailed(ILogger logger, string service, string instanceId, string error);
    }
}
