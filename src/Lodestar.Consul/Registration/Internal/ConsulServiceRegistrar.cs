using Lodestar.Consul.Discovery.Internal;
using Lodestar.Consul.Internal;
using Lodestar.Endpoints;
using Lodestar.Registration;
using Microsoft.Extensions.Logging;

namespace Lodestar.Consul.Registration.Internal;

/// <summary>
/// Registers instances with the local Consul agent (<c>PUT /v1/agent/service/register</c>) with a TTL check kept
/// passing by heartbeats, or an HTTP check the agent runs itself; both carry <c>DeregisterCriticalServiceAfter</c>.
/// </summary>
internal sealed partial class ConsulServiceRegistrar : IServiceRegistrar
{
    private readonly ConsulApi _api;
    private readonly TimeProvider _timeProvider;
    private readonly Func<double>? _random;
    private readonly ILogger _logger;

    public ConsulServiceRegistrar(ConsulApi api, TimeProvider timeProvider, ILoggerFactory loggerFactory)
        : this(api, timeProvider, loggerFactory, random: null)
    {
    }

    /// <summary>Initializes a registrar whose heartbeat backoff draws its jitter from <paramref name="random"/> (for tests).</summary>
    internal ConsulServiceRegistrar(ConsulApi api, TimeProvider timeProvider, ILoggerFactory loggerFactory, Func<double>? random)
    {
        _api = api;
        _timeProvider = timeProvider;
        _random = random;
        _logger = loggerFactory.CreateLogger("Lodestar.Consul.Registration");
    }

    public string Name => ConsulEndpointSourceProvider.SourceName;

    public async Task<IServiceRegistrationHandle> RegisterAsync(ServiceRegistration registration, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(registration);
        ArgumentException.ThrowIfNullOrWhiteSpace(registration.ServiceName);
        if (!DiscoveredEndpoint.TryCreate(registration.Host, registration.Port, registration.Scheme, 1, null, null, 0, out _, out var error))
        {
            throw new ArgumentException($"The registration of '{registration.ServiceName}' is not a valid endpoint: {error}.", nameof(registration));
        }

        if (registration.Ttl < TimeSpan.FromMilliseconds(300))
        {
            throw new ArgumentException($"The registration's TTL is {registration.Ttl}; it must be at least 300 ms.", nameof(registration));
        }

        var body = CreateBody(registration, _api.Options);
        await _api.RegisterAsync(body, cancellationToken).ConfigureAwait(false);
        Log.Registered(_logger, registration.ServiceName, body.ID, _api.DisplayAddress, body.Check?.TTL is null ? "HTTP" : "TTL");
        var handle = new ConsulRegistrationHandle(registration, body, _api, _timeProvider, _random, _logger);
        handle.Start();
        return handle;
    }

    public async Task<bool> DeregisterAsync(string serviceName, string instanceId, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(serviceName);
        ArgumentException.ThrowIfNullOrWhiteSpace(instanceId);
        var removed = await _api.DeregisterAsync(instanceId, cancellationToken).ConfigureAwait(false);
        Log.Deregistered(_logger, serviceName, instanceId, _api.DisplayAddress);
        return removed;
    }

    internal static AgentServiceRegistration CreateBody(ServiceRegistration registration, ConsulOptions options)
    {
        var id = registration.EffectiveInstanceId;
        var meta = new Dictionary<string, string>(registration.Metadata, StringComparer.Ordinal);

        // Consul has no notion of scheme; publish it so Lodestar clients call https instances over https.
        meta.TryAdd(ConsulEndpointSource.SchemeKey, registration.Scheme);
        var check = new AgentServiceCheck
        {
            DeregisterCriticalServiceAfter = GoDuration.Format(options.DeregisterCriticalServiceAfter),
        };

        if (string.IsNullOrEmpty(registration.HealthCheckPath))
        {
            check.CheckID = CheckIdOf(id);
            check.Name = $"Service '{registration.ServiceName}' TTL";
            check.TTL = GoDuration.Format(registration.Ttl);

            // The instance is registering itself, so it is alive: start passing rather than Consul's default critical.
            check.Status = "passing";
        }
        else
        {
            var path = registration.HealthCheckPath.StartsWith('/') ? registration.HealthCheckPath : "/" + registration.HealthCheckPath;
            check.Name = $"Service '{registration.ServiceName}' HTTP";
            check.HTTP = $"{registration.Scheme}://{DiscoveredEndpoint.FormatAddress(registration.Host, registration.Port)}{path}";
            check.Interval = GoDuration.Format(options.HttpCheckInterval);
            check.Timeout = GoDuration.Format(options.HttpCheckTimeout);
        }

        return new AgentServiceRegistration
        {
            ID = id,
            Name = registration.ServiceName,
            Tags = registration.Tags.Count == 0 ? null : [.. registration.Tags],
            Address = registration.Host,
            Port = registration.Port,
            Meta = meta,
            Check = check,
            Namespace = string.IsNullOrEmpty(options.Namespace) ? null : options.Namespace,
            Partition = string.IsNullOrEmpty(options.Partition) ? null : options.Partition,
        };
    }

    /// <summary>The ID Consul gives the single check of a service registration: <c>service:&lt;id&gt;</c>.</summary>
    internal static string CheckIdOf(string serviceId) => "service:" + serviceId;

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Registered instance {InstanceId} of service {Service} with Consul at {Address} ({CheckKind} check).", EventName = "ConsulRegistered")]
        public static partial void Registered(ILogger logger, string service, string instanceId, string address, string checkKind);

        [LoggerMessage(2, LogLevel.Information, "Deregistered instance {InstanceId} of service {Service} from Consul at {Address}.", EventName = "ConsulDeregistered")]
        public static partial void Deregistered(ILogger logger, string service, string instanceId, string address);
    }
}
