using Lodestar.Etcd.Client.Internal;
using Lodestar.Discovery;
using Lodestar.Internal;
using Lodestar.Registration;
using Microsoft.Extensions.Logging;

namespace Lodestar.Etcd.Registration.Internal;

/// <summary>
/// One live etcd registration: a lease, the key bound to it, and the loop that renews the lease every third of its
/// TTL (as clientv3's KeepAlive does) and re-creates lease and key when etcd says the lease is gone.
/// </summary>
internal sealed partial class EtcdRegistrationHandle : IServiceRegistrationHandle
{
    private readonly string _key;
    private readonly string _value;
    private readonly EtcdClient _client;
    private readonly EtcdOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private Task _loop = Task.CompletedTask;
    private long _leaseId;
    private long _grantedTtl;
    private int _stopped;

    public EtcdRegistrationHandle(ServiceRegistration registration, string key, string value, EtcdClient client, EtcdOptions options,
        TimeProvider timeProvider, ILogger logger)
    {
        Registration = registration;
        _key = key;
        _value = value;
        _client = client;
        _options = options;
        _timeProvider = timeProvider;
        _logger = logger;
    }

    public ServiceRegistration Registration { get; }

    /// <summary>Gets the etcd key of the registration.</summary>
    public string Key => _key;

    /// <summary>Gets the current lease ID.</summary>
    public long LeaseId => Interlocked.Read(ref _leaseId);

    /// <summary>Gets how often the lease is renewed.</summary>
    public TimeSpan KeepAliveInterval
    {
        get
        {
            // A third of the TTL etcd granted (it may round a short TTL up), never more often than every 200 ms.
            var ttl = Math.Max(Interlocked.Read(ref _grantedTtl), (long)Math.Ceiling(Registration.Ttl.TotalSeconds));
            return TimeSpan.FromMilliseconds(Math.Max(200, ttl * 1000.0 / 3));
        }
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await CreateAsync(cancellationToken).ConfigureAwait(false);
        using (ExecutionContext.SuppressFlow())
        {
            _loop = Task.Run(() => KeepAliveLoopAsync(_stopping.Token), CancellationToken.None);
        }
    }

    public async Task DeregisterAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        await StopLoopAsync().ConfigureAwait(false);
        // Revoking the lease deletes the key with it.
        await _client.RevokeLeaseAsync(LeaseId, cancellationToken).ConfigureAwait(false);
        Log.Deregistered(_logger, _key);
    }

    /// <summary>Test seam: stops renewing the lease without revoking it, as a crashed process would.</summary>
    internal async Task AbandonAsync()
    {
        Interlocked.Exchange(ref _stopped, 1);
        await StopLoopAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            using var deadline = new CancellationTokenSource(_options.RequestTimeout, _timeProvider);
            await DeregisterAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // The lease still expires on its own within the TTL.
            Log.DeregisterFailed(_logger, _key, ex.Message);
        }
        finally
        {
            await StopLoopAsync().ConfigureAwait(false);
            _stopping.Dispose();
        }
    }

    private async Task StopLoopAsync()
    {
        try
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            return;
        }

        await _loop.ConfigureAwait(false);
    }

    private async Task CreateAsync(CancellationToken cancellationToken)
    {
        var ttlSeconds = Math.Max(1, (long)Math.Ceiling(Registration.Ttl.TotalSeconds));
        var (leaseId, granted) = await _client.GrantLeaseAsync(ttlSeconds, cancellationToken).ConfigureAwait(false);
        try
        {
            await _client.PutAsync(_key, _value, leaseId, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.PutFailed(_logger, _key, leaseId, ex.Message);
            throw;
        }

        Interlocked.Exchange(ref _grantedTtl, granted);
        Interlocked.Exchange(ref _leaseId, leaseId);
        Log.Registered(_logger, _key, leaseId, granted);
    }

    private async Task KeepAliveLoopAsync(CancellationToken cancellationToken)
    {
        var interval = KeepAliveInterval;
        var backoff = new Backoff(new BackoffOptions { InitialDelay = TimeSpan.FromMilliseconds(100), MaxDelay = interval }, _timeProvider);
        var delay = interval;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await _timeProvider.DelayAsync(delay, cancellationToken).ConfigureAwait(false);
                var remaining = await _client.KeepAliveAsync(LeaseId, cancellationToken).ConfigureAwait(false);
                if (remaining <= 0)
                {
                    Log.LeaseLost(_logger, _key, LeaseId);
                    await CreateAsync(cancellationToken).ConfigureAwait(false);
                    interval = KeepAliveInterval;
                }

                backoff.Reset();
                delay = interval;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // Retry sooner than the interval: the lease must be renewed before its TTL runs out.
                delay = backoff.NextDelay();
                Log.KeepAliveFailed(_logger, _key, delay.TotalMilliseconds, ex.Message);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Registered etcd key '{Key}' with lease {LeaseId} (TTL {Ttl} s).", EventName = "EtcdRegistered")]
        public static partial void Registered(ILogger logger, string key, long leaseId, long ttl);

        [LoggerMessage(2, LogLevel.Warning, "etcd lease {LeaseId} of '{Key}' expired; registering again.", EventName = "EtcdLeaseLost")]
        public static partial void LeaseLost(ILogger logger, string key, long leaseId);

        [LoggerMessage(3, LogLevel.Warning, "Keep-alive of etcd key '{Key}' failed; retrying in {DelayMs:0} ms: {Reason}", EventName = "EtcdKeepAliveFailed")]
        public static partial void KeepAliveFailed(ILogger logger, string key, double delayMs, string reason);

        [LoggerMessage(4, LogLevel.Information, "Deregistered etcd key '{Key}'.", EventName = "EtcdDeregistered")]
        public static partial void Deregistered(ILogger logger, string key);

        [LoggerMessage(5, LogLevel.Warning, "Deregistering etcd key '{Key}' failed; its lease expires on its own: {Reason}", EventName = "EtcdDeregisterFailed")]
        public static partial void DeregisterFailed(ILogger logger, string key, string reason);

        [LoggerMessage(6, LogLevel.Warning, "Writing etcd key '{Key}' with lease {LeaseId} failed: {Reason}", EventName = "EtcdPutFailed")]
        public static partial void PutFailed(ILogger logger, string key, long leaseId, string reason);
    }
}
