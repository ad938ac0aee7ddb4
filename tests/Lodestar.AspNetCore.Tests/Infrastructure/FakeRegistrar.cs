using System.Collections.Concurrent;
using System.Diagnostics;
using Lodestar.Registration;

namespace Lodestar.AspNetCore.Tests.Infrastructure;

/// <summary>An in-memory registry: records registrations and deregistrations with timestamps and runs hooks.</summary>
internal sealed class FakeRegistrar : IServiceRegistrar
{
    private int _failuresLeft;

    public FakeRegistrar(string name = "fake", int failFirst = 0)
    {
        Name = name;
        _failuresLeft = failFirst;
    }

    public string Name { get; }

    public ConcurrentDictionary<string, ServiceRegistration> Registered { get; } = new();

    public ConcurrentQueue<(string Event, string InstanceId, long Timestamp)> Events { get; } = new();

    public int Attempts;

    /// <summary>Runs inside RegisterAsync, before the registration counts (for example to probe the advertised address).</summary>
    public Func<ServiceRegistration, Task>? OnRegister { get; set; }

    /// <summary>Runs inside RegisterAsync after the registration counts, before the answer returns (for example to lose the answer).</summary>
    public Func<ServiceRegistration, CancellationToken, Task>? AfterRegister { get; set; }

    /// <summary>Runs inside deregistration, before it completes.</summary>
    public Func<ServiceRegistration, CancellationToken, Task>? OnDeregister { get; set; }

    public long? DeregisteredAt(string instanceId) => Events.Where(e => e.Event == "deregistered" && e.InstanceId == instanceId).Select(e => (long?)e.Timestamp).FirstOrDefault();

    public async Task<IServiceRegistrationHandle> RegisterAsync(ServiceRegistration registration, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref Attempts);
        if (Interlocked.Decrement(ref _failuresLeft) >= 0)
        {
            throw new HttpRequestException("registry unavailable");
        }

        if (OnRegister is not null)
        {
            await OnRegister(registration);
        }

        Registered[registration.EffectiveInstanceId] = registration;
        Events.Enqueue(("registered", registration.EffectiveInstanceId, Stopwatch.GetTimestamp()));
        if (AfterRegister is not null)
        {
            await AfterRegister(registration, cancellationToken);
        }

        return new Handle(this, registration);
    }

    public async Task<bool> DeregisterAsync(string serviceName, string instanceId, CancellationToken cancellationToken)
    {
        if (Registered.TryRemove(instanceId, out var registration))
        {
            if (OnDeregister is not null)
            {
                await OnDeregister(registration, cancellationToken);
            }

            Events.Enqueue(("deregistered", instanceId, Stopwatch.GetTimestamp()));
            return true;
        }

        return false;
    }

    private sealed class Handle(FakeRegistrar owner, ServiceRegistration registration) : IServiceRegistrationHandle
    {
        public ServiceRegistration Registration { get; } = registration;

        public Task DeregisterAsync(CancellationToken cancellationToken)
            => owner.DeregisterAsync(Registration.ServiceName, Registration.EffectiveInstanceId, cancellationToken);

        public ValueTask DisposeAsync() => new(DeregisterAsync(CancellationToken.None));
    }
}
