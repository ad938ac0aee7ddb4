namespace Lodestar.Registration;

/// <summary>Registers instances in one kind of registry and keeps them alive.</summary>
public interface IServiceRegistrar
{
    /// <summary>Gets the registry name, for example <c>consul</c> or <c>etcd</c>.</summary>
    string Name { get; }

    /// <summary>
    /// Registers an instance and keeps the registration alive (heartbeats, lease keep-alive, re-registration after a
    /// registry restart) until the returned handle is disposed, which deregisters it.
    /// </summary>
    /// <param name="registration">The instance to register.</param>
    /// <param name="cancellationToken">Cancels the initial registration.</param>
    /// <returns>The live registration.</returns>
    Task<IServiceRegistrationHandle> RegisterAsync(ServiceRegistration registration, CancellationToken cancellationToken);

    /// <summary>Removes a registration by service and instance ID (for example one left by a crashed process).</summary>
    /// <param name="serviceName">The service name.</param>
    /// <param name="instanceId">The instance ID.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>
    /// <see langword="true"/> when the registry held the instance and removed it; <see langword="false"/> when it held
    /// no such instance, so nothing was removed.
    /// </returns>
    Task<bool> DeregisterAsync(string serviceName, string instanceId, CancellationToken cancellationToken);
}

/// <summary>A live registration; disposing it deregisters the instance.</summary>
public interface IServiceRegistrationHandle : IAsyncDisposable
{
    /// <summary>Gets what was registered.</summary>
    ServiceRegistration Registration { get; }

    /// <summary>Stops keeping the registration alive and removes it from the registry.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the registry has removed it.</returns>
    Task DeregisterAsync(CancellationToken cancellationToken);
}
