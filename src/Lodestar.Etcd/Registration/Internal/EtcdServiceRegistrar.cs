using Lodestar.Etcd.Client.Internal;
using Lodestar.Etcd.Naming.Internal;
using Lodestar.Internal;
using Lodestar.Registration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Lodestar.Etcd.Registration.Internal;

/// <summary>
/// Registers instances as etcd keys bound to a lease: <c>{Prefix}{service}/{instanceId}</c> holding the Go
/// naming/endpoints value, kept alive every third of the TTL and revoked on deregistration.
/// </summary>
internal sealed class EtcdServiceRegistrar : IServiceRegistrar
{
    public const string RegistrarName = "etcd";

    private readonly EtcdClient _client;
    private readonly IOptions<EtcdOptions> _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger<EtcdRegistrationHandle> _logger;

    public EtcdServiceRegistrar(EtcdClient client, IOptions<EtcdOptions> options, TimeProvider timeProvider, ILogger<EtcdRegistrationHandle> logger)
    {
        _client = client;
        _options = options;
        _timeProvider = timeProvider;
        _logger = logger;
    }

    public string Name => RegistrarName;

    public async Task<IServiceRegistrationHandle> RegisterAsync(ServiceRegistration registration, CancellationToken cancellationToken)
        => await RegisterCoreAsync(registration, cancellationToken).ConfigureAwait(false);

    public async Task<bool> DeregisterAsync(string serviceName, string instanceId, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceName);
        ArgumentException.ThrowIfNullOrEmpty(instanceId);
        // Deleting the key is enough: its lease, if any, dies with its owner or is revoked by it.
        var deleted = await _client.DeleteAsync(EtcdNamingFormat.InstanceKey(_options.Value.Prefix, serviceName, instanceId), cancellationToken).ConfigureAwait(false);
        return deleted > 0;
    }

    internal async Task<EtcdRegistrationHandle> RegisterCoreAsync(ServiceRegistration registration, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(registration);
        ArgumentException.ThrowIfNullOrEmpty(registration.ServiceName);
        ArgumentException.ThrowIfNullOrEmpty(registration.Host);
        ArgumentOutOfRangeException.ThrowIfLessThan(registration.Port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(registration.Port, 65535);
        ArgumentOutOfRangeException.ThrowIfLessThan(registration.Ttl, TimeSpan.FromSeconds(1));

        var key = EtcdNamingFormat.InstanceKey(_options.Value.Prefix, registration.ServiceName, registration.EffectiveInstanceId);
        var handle = new EtcdRegistrationHandle(registration, key, EtcdNamingFormat.Format(registration), _client, _options.Value, _timeProvider, _logger);
        await handle.StartAsync(cancellationToken).ConfigureAwait(false);
        return handle;
    }
}
