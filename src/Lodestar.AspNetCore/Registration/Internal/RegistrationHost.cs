using Lodestar.Discovery;
using Lodestar.Internal;
using Lodestar.Registration;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Lodestar.AspNetCore.Registration.Internal;

/// <summary>
/// Registers the instance with every selected <see cref="IServiceRegistrar"/> once the server listens, retrying with
/// backoff until it succeeds, and removes the registrations first on shutdown.
/// </summary>
/// <remarks>
/// Each registrar has its own loop so one unreachable registry cannot delay registration in another. Handles are
/// published under <see cref="_gate"/>; deregistration first stops the loops, so no registration can appear after it.
/// </remarks>
internal sealed partial class RegistrationHost
{
    /// <summary>Registration retries: 500 ms doubling to 30 s with full jitter.</summary>
    private static readonly BackoffOptions s_registerBackoff = new() { InitialDelay = TimeSpan.FromMilliseconds(500), MaxDelay = TimeSpan.FromSeconds(30) };

    private readonly IServiceRegistrar[] _registrars;
    private readonly IOptions<LodestarRegistrationOptions> _options;
    private readonly IServer _server;
    private readonly IConfiguration? _configuration;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly List<IServiceRegistrationHandle> _handles = [];
    private readonly CancellationTokenSource _stopping = new();
    private Task[] _loops = [];
    private int _deregistered;

    public RegistrationHost(IEnumerable<IServiceRegistrar> registrars, IOptions<LodestarRegistrationOptions> options, IServer server,
        TimeProvider timeProvider, ILogger<RegistrationHost> logger, IConfiguration? configuration = null)
    {
        _options = options;
        var wanted = options.Value.Registrars;
        _registrars = registrars.Where(r => wanted.Count == 0 || wanted.Contains(r.Name, StringComparer.OrdinalIgnoreCase)).ToArray();
        _server = server;
        _configuration = configuration;
        _timeProvider = timeProvider;
        _logger = logger;
    }

    /// <summary>Gets the registrations in force now.</summary>
    public IReadOnlyList<ServiceRegistration> Active
    {
        get
        {
            lock (_gate)
            {
                return _handles.Select(h => h.Registration).ToArray();
            }
        }
    }

    /// <summary>Resolves the advertised address and starts one registration loop per registrar; returns at once.</summary>
    public void Start()
    {
        if (_registrars.Length == 0)
        {
            Log.NoRegistrars(_logger, _options.Value.ServiceName);
            return;
        }

        var registration = BuildRegistration();
        Log.Advertising(_logger, registration.ServiceName, registration.EffectiveInstanceId, registration.Host, registration.Port, registration.Scheme);
        using (ExecutionContext.SuppressFlow())
        {
            _loops = _registrars.Select(r => Task.Run(() => RegisterLoopAsync(r, registration, _stopping.Token), CancellationToken.None)).ToArray();
        }
    }

    /// <summary>Stops the registration loops and removes every registration, within the deregistration timeout.</summary>
    public async Task DeregisterAllAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _deregistered, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_loops).ConfigureAwait(false);

        IServiceRegistrationHandle[] handles;
        lock (_gate)
        {
            handles = _handles.ToArray();
            _handles.Clear();
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.Value.DeregisterTimeout);
        await Task.WhenAll(handles.Select(h => DeregisterAsync(h, timeout.Token))).ConfigureAwait(false);
    }

    internal ServiceRegistration BuildRegistration()
    {
        var options = _options.Value;
        var addresses = _server.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        var (host, port, scheme) = AdvertisedAddress.Resolve(addresses, options, _configuration?["POD_IP"], AdvertisedAddress.FindMachineAddress);
        return new ServiceRegistration
        {
            ServiceName = options.ServiceName,
            InstanceId = options.InstanceId,
            Host = host,
            Port = port,
            Scheme = scheme,
            Tags = options.Tags.ToArray(),
            Metadata = new Dictionary<string, string>(options.Metadata, StringComparer.Ordinal),
            Ttl = options.Ttl,
            HealthCheckPath = options.HealthCheckPath,
        };
    }

    private async Task RegisterLoopAsync(IServiceRegistrar registrar, ServiceRegistration registration, CancellationToken cancellationToken)
    {
        var backoff = new Backoff(s_registerBackoff, _timeProvider);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var handle = await registrar.RegisterAsync(registration, cancellationToken).ConfigureAwait(false);
                var keep = false;
                lock (_gate)
                {
                    if (!cancellationToken.IsCancellationRequested)
                    {
                        _handles.Add(handle);
                        keep = true;
                    }
                }

                if (!keep)
                {
                    // Shutdown began while the registry answered: take the registration back at once.
                    await DeregisterAsync(handle, CancellationToken.None).ConfigureAwait(false);
                    return;
                }

                Log.Registered(_logger, registration.ServiceName, registration.EffectiveInstanceId, registrar.Name);
                return;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // Only the registration call observes the token here. Shutdown cut it short, but the registry may have
                // applied it before the answer was lost: remove the instance by name so no ghost outlives the process.
                await RemoveInterruptedAsync(registrar, registration).ConfigureAwait(false);
                return;
            }
            catch (Exception ex)
            {
                var delay = backoff.NextDelay();
                Log.RegisterFailed(_logger, registration.ServiceName, registrar.Name, backoff.Failures, delay.TotalMilliseconds, ex);
                try
                {
                    await _timeProvider.DelayAsync(delay, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task RemoveInterruptedAsync(IServiceRegistrar registrar, ServiceRegistration registration)
    {
        using var timeout = new CancellationTokenSource(_options.Value.DeregisterTimeout, _timeProvider);
        try
        {
            await registrar.DeregisterAsync(registration.ServiceName, registration.EffectiveInstanceId, timeout.Token).ConfigureAwait(false);
            Log.InterruptedRemoved(_logger, registration.ServiceName, registration.EffectiveInstanceId, registrar.Name);
        }
        catch (Exception ex)
        {
            Log.DeregisterFailed(_logger, registration.ServiceName, registration.EffectiveInstanceId, ex);
        }
    }

    private async Task DeregisterAsync(IServiceRegistrationHandle handle, CancellationToken cancellationToken)
    {
        var registration = handle.Registration;
        try
        {
            await handle.DeregisterAsync(cancellationToken).ConfigureAwait(false);
            Log.Deregistered(_logger, registration.ServiceName, registration.EffectiveInstanceId);
        }
        catch (Exception ex)
        {
            // The registry's TTL (or DeregisterCriticalServiceAfter) removes the instance in the end.
            Log.DeregisterFailed(_logger, registration.ServiceName, registration.EffectiveInstanceId, ex);
        }
        finally
        {
            try
            {
                await handle.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                Log.DeregisterFailed(_logger, registration.ServiceName, registration.EffectiveInstanceId, ex);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(20, LogLevel.Information, "Advertising service {Service} instance {InstanceId} at {Scheme}://{Host}:{Port}.", EventName = "Advertising")]
        public static partial void Advertising(ILogger logger, string service, string instanceId, string host, int port, string scheme);

        [LoggerMessage(21, LogLevel.Information, "Registered service {Service} instance {InstanceId} in {Registry}.", EventName = "Registered")]
        public static partial void Registered(ILogger logger, string service, string instanceId, string registry);

        [LoggerMessage(22, LogLevel.Warning, "Registering service {Service} in {Registry} failed (attempt {Attempt}); retrying in {DelayMs:0} ms.", EventName = "RegisterFailed")]
        public static partial void RegisterFailed(ILogger logger, string service, string registry, int attempt, double delayMs, Exception exception);

        [LoggerMessage(23, LogLevel.Information, "Deregistered service {Service} instance {InstanceId}.", EventName = "Deregistered")]
        public static partial void Deregistered(ILogger logger, string service, string instanceId);

        [LoggerMessage(24, LogLevel.Warning, "Deregistering service {Service} instance {InstanceId} failed; the registry's TTL will remove it.", EventName = "DeregisterFailed")]
        public static partial void DeregisterFailed(ILogger logger, string service, string instanceId, Exception exception);

        [LoggerMessage(26, LogLevel.Information, "Shutdown interrupted the registration of service {Service} instance {InstanceId} in {Registry}; removed it in case the registry had applied it.", EventName = "InterruptedRegistrationRemoved")]
        public static partial void InterruptedRemoved(ILogger logger, string service, string instanceId, string registry);

        [LoggerMessage(25, LogLevel.Warning, "Registration of service {Service} is configured but no registrar is registered (or none matches the configured names).", EventName = "NoRegistrars")]
        public static partial void NoRegistrars(ILogger logger, string service);
    }
}
