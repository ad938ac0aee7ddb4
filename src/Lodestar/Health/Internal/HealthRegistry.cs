using System.Collections.Concurrent;
using Lodestar.Diagnostics.Internal;
using Lodestar.Discovery;
using Lodestar.Http;
using Lodestar.Http.Internal;
using Lodestar.Internal;
using Lodestar.LoadBalancing;
using Lodestar.Resilience.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Lodestar.Health.Internal;

/// <summary>
/// Owns the health stages: one per (source, service, effective health settings), created on first use and shared by
/// every balancer and client with those settings; they live until the container is disposed.
/// </summary>
/// <remarks>
/// A client's effective settings are the service's (<c>Lodestar:Services:&lt;service&gt;</c>) with the properties the
/// client set itself (<c>Lodestar:Clients:&lt;client&gt;</c> or code) on top. Clients whose effective settings differ
/// get separate stages over the same endpoints, each with its own ejections, breakers and checks, and a log line says
/// so: sharing one stage would silently apply one client's settings to the other.
/// </remarks>
internal sealed partial class HealthRegistry : IDisposable
{
    private readonly IEndpointResolver _resolver;
    private readonly IOptionsMonitor<OutlierDetectionOptions> _outlier;
    private readonly IOptionsMonitor<HealthCheckOptions> _checks;
    private readonly IOptionsMonitor<CircuitBreakerOptions> _breakers;
    private readonly IOptionsMonitor<LoadBalancingOptions>? _loadBalancing;
    private readonly TimeProvider _timeProvider;
    private readonly RandomSource _random;
    private readonly LodestarMetrics? _metrics;
    private readonly ILogger _logger;
    private readonly ConnectionRetirer? _retirer;
    private readonly HealthProbeFactories _probes;
    private readonly ConcurrentDictionary<(string? Source, string Service, string Settings), Lazy<Entry>> _stages = new();
    private volatile bool _disposed;

    public HealthRegistry(IEndpointResolver resolver, IOptionsMonitor<OutlierDetectionOptions> outlier, IOptionsMonitor<HealthCheckOptions> checks,
        IOptionsMonitor<CircuitBreakerOptions> breakers, TimeProvider timeProvider, RandomSource random, LodestarMetrics? metrics, ILoggerFactory loggerFactory,
        IOptionsMonitor<LoadBalancingOptions>? loadBalancing = null, ConnectionRetirer? retirer = null, HealthProbeFactories? probes = null)
    {
        _resolver = resolver;
        _outlier = outlier;
        _checks = checks;
        _breakers = breakers;
        _loadBalancing = loadBalancing;
        _timeProvider = timeProvider;
        _random = random;
        _metrics = metrics;
        _logger = loggerFactory.CreateLogger("Lodestar.Health");
        _retirer = retirer;
        _probes = probes ?? HealthProbeFactories.BuiltIn;
    }

    /// <summary>Gets the effective health settings of <paramref name="client"/> (or of the service alone) for a service.</summary>
    /// <exception cref="OptionsValidationException">The merged settings are inconsistent (for example a client's
    /// <c>BaseEjectionTime</c> above the service's <c>MaxEjectionTime</c>); the message names client, service and property.</exception>
    public HealthSettings Resolve(string serviceName, LodestarClientOptions? client, string? clientName = null)
    {
        var settings = HealthSettings.Merge(_outlier.Get(serviceName), _checks.Get(serviceName), _breakers.Get(serviceName),
            client?.OutlierDetection, client?.HealthChecks, client?.CircuitBreaker);
        if (client is not null)
        {
            // Each side was validated alone at startup; only a combination can be wrong here.
            var failures = new List<string>();
            var prefix = $"The health settings of client '{clientName}' for service '{serviceName}' (the service's with the client's on top): ";
            ResilienceOptionsValidator.ValidateOutlier(settings.Outlier, prefix + "OutlierDetection.", failures);
            ResilienceOptionsValidator.ValidateChecks(settings.Checks, prefix + "HealthChecks.", failures);
            ResilienceOptionsValidator.ValidateBreaker(settings.Breaker, prefix + "CircuitBreaker.", failures);
            if (failures.Count > 0)
            {
                throw new OptionsValidationException(clientName ?? Options.DefaultName, typeof(LodestarClientOptions), failures);
            }
        }

        return settings;
    }

    /// <summary>Gets the stage for the settings, waiting for the service's first endpoint set when it is new.</summary>
    /// <param name="serviceName">The service.</param>
    /// <param name="sourceName">The source, or <see langword="null"/> for the default.</param>
    /// <param name="settings">The effective settings.</param>
    /// <param name="requester">The client that asks, for the log line when its settings need a stage of their own.</param>
    /// <param name="cancellationToken">Cancels the wait for the first set.</param>
    public async ValueTask<HealthStage> GetAsync(string serviceName, string? sourceName, HealthSettings settings, string? requester, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var key = (sourceName, serviceName, settings.Key);
        var lazy = _stages.GetOrAdd(key, static (k, state) => new Lazy<Entry>(() => state.Self.Create(k, state.Settings, state.Requester)),
            (Self: this, Settings: settings, Requester: requester));
        Entry entry;
        try
        {
            entry = lazy.Value;
        }
        catch
        {
            // Do not cache a failure (for example an unknown service): the next request tries again.
            _stages.TryRemove(new KeyValuePair<(string?, string, string), Lazy<Entry>>(key, lazy));
            throw;
        }

        var stage = entry.Stage;
        if (stage.SetVersion == 0)
        {
            // The subscription may be notified just after this wait completes; apply the set here too (idempotent by version).
            var set = await _resolver.GetEndpointsAsync(serviceName, sourceName, cancellationToken).ConfigureAwait(false);
            stage.Update(set);
        }
        else
        {
            stage.CatchUp();
        }

        return stage;
    }

    public void Dispose()
    {
        _disposed = true;
        foreach (var lazy in _stages.Values)
        {
            if (lazy.IsValueCreated)
            {
                lazy.Value.Stage.Dispose();
            }
        }

        _stages.Clear();
    }

    private Entry Create((string? Source, string Service, string Settings) key, HealthSettings settings, string? requester)
    {
        foreach (var (otherKey, other) in _stages)
        {
            if (otherKey.Source == key.Source && otherKey.Service == key.Service && otherKey.Settings != key.Settings && other.IsValueCreated)
            {
                Log.SeparateStage(_logger, requester ?? "(none)", key.Service, other.Value.Requester ?? "(none)", settings.DescribeDifferences(other.Value.Stage.Settings));
                break;
            }
        }

        HealthProbeFactory? probeFactory = null;
        if (settings.Checks.Enabled && !_probes.TryGet(settings.Checks.Protocol, out probeFactory))
        {
            // Startup validation catches this for configured settings; settings made in code after startup end here.
            throw new InvalidOperationException(HealthProbeFactories.DescribeMissing(settings.Checks.Protocol, $"The health checks of service '{key.Service}'"));
        }

        var stage = new HealthStage(key.Service, key.Source, settings, _loadBalancing?.Get(key.Service), _timeProvider, _random, _metrics, _logger, _retirer);
        try
        {
            stage.Start(_resolver, probeFactory);
        }
        catch
        {
            stage.Dispose();
            throw;
        }

        return new Entry(stage, requester);
    }

    private sealed record Entry(HealthStage Stage, string? Requester);

    private static partial class Log
    {
        [LoggerMessage(205, LogLevel.Information,
            "Client {Client} calls service {Service} with health settings that differ from those of client {OtherClient} ({Differences}); it gets a health stage of its own, with its own ejections, breakers and checks.",
            EventName = "SeparateHealthStage")]
        public static partial void SeparateStage(ILogger logger, string client, string service, string otherClient, string differences);
    }
}
