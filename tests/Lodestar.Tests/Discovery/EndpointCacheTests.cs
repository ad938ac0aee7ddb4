using System.Diagnostics.CodeAnalysis;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Lodestar.Tests.Discovery;

public sealed class EndpointCacheTests
{
    [Fact]
    public async Task GetEndpoints_ManyCallers_ShareOneSourcePerService()
    {
        var provider = new ScriptedProvider();
        await using var services = Build(provider);
        var resolver = services.GetRequiredService<IEndpointResolver>();

        var calls = Enumerable.Range(0, 20).Select(_ => resolver.GetEndpointsAsync("orders").AsTask()).ToList();
        await Eventually.TrueAsync(() => provider.Sources.ContainsKey("orders") && provider.Sources["orders"].Running, TimeSpan.FromSeconds(5), "source started");
        provider.Sources["orders"].Publish(DiscoveredEndpoint.Create("10.0.0.1", 80));
        var sets = await Task.WhenAll(calls);

        Assert.Single(provider.Sources);
        Assert.Equal(1, provider.Created);
        Assert.All(sets, s => Assert.Same(sets[0], s));
    }

    [Fact]
    public async Task GetEndpoints_NoSnapshotInTime_FailsNamingServiceSourceAndLastError()
    {
        var provider = new ScriptedProvider();
        await using var services = Build(provider, TimeSpan.FromSeconds(2));
        var resolver = services.GetRequiredService<IEndpointResolver>();
        var pending = resolver.GetEndpointsAsync("orders").AsTask();
        await Eventually.TrueAsync(() => provider.Sources.ContainsKey("orders") && provider.Sources["orders"].Running, TimeSpan.FromSeconds(5), "source started");
        provider.Sources["orders"].Fail(new InvalidOperationException("registry at http://127.0.0.1:1 refused the connection"));

        var error = await Assert.ThrowsAsync<EndpointResolutionException>(() => pending);

        Assert.Equal("orders", error.ServiceName);
        Assert.Contains("'orders'", error.Message, StringComparison.Ordinal);
        Assert.Contains("'scripted'", error.Message, StringComparison.Ordinal);
        Assert.Contains("refused the connection", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Watch_SubscribedAfterASetAndAnError_StartsFromBoth_AndNoVersionTwice()
    {
        // A subscriber that arrives after the source reported must not miss the error standing beside the set.
        var provider = new ScriptedProvider();
        await using var services = Build(provider);
        var resolver = services.GetRequiredService<IEndpointResolver>();
        var first = resolver.GetEndpointsAsync("orders").AsTask();
        await Eventually.TrueAsync(() => provider.Sources.ContainsKey("orders") && provider.Sources["orders"].Running, TimeSpan.FromSeconds(5), "source started");
        provider.Sources["orders"].Publish(DiscoveredEndpoint.Create("10.0.0.1", 80));
        await first;
        provider.Sources["orders"].Fail(new InvalidOperationException("entry 1 is null"));

        var versions = new List<long>();
        var errors = new List<Exception>();
        using var late = resolver.Watch("orders", null, set => versions.Add(set.Version), errors.Add);
        provider.Sources["orders"].Publish(DiscoveredEndpoint.Create("10.0.0.1", 80), DiscoveredEndpoint.Create("10.0.0.2", 80));

        Assert.Equal([1L, 2L], versions);
        Assert.Equal("entry 1 is null", Assert.Single(errors).Message);
    }

    [Fact]
    public async Task Errors_AfterASnapshot_KeepTheLastGoodSet()
    {
        var provider = new ScriptedProvider();
        await using var services = Build(provider);
        var resolver = services.GetRequiredService<IEndpointResolver>();
        var first = resolver.GetEndpointsAsync("orders").AsTask();
        await Eventually.TrueAsync(() => provider.Sources.ContainsKey("orders") && provider.Sources["orders"].Running, TimeSpan.FromSeconds(5), "source started");
        provider.Sources["orders"].Publish(DiscoveredEndpoint.Create("10.0.0.1", 80), DiscoveredEndpoint.Create("10.0.0.2", 80));
        var good = await first;

        provider.Sources["orders"].Fail(new InvalidOperationException("boom"));
        provider.Sources["orders"].Fail(new InvalidOperationException("boom again"));

        var after = await resolver.GetEndpointsAsync("orders");
        Assert.Same(good, after);
        Assert.Equal(2, after.Count);
    }

    [Fact]
    public async Task Publish_SameEndpointsAgain_DoesNotBumpVersion()
    {
        var provider = new ScriptedProvider();
        await using var services = Build(provider);
        var resolver = services.GetRequiredService<IEndpointResolver>();
        var first = resolver.GetEndpointsAsync("orders").AsTask();
        await Eventually.TrueAsync(() => provider.Sources.ContainsKey("orders") && provider.Sources["orders"].Running, TimeSpan.FromSeconds(5), "source started");
        provider.Sources["orders"].Publish(DiscoveredEndpoint.Create("10.0.0.1", 80));
        await first;

        provider.Sources["orders"].Publish(DiscoveredEndpoint.Create("10.0.0.1", 80));
        provider.Sources["orders"].Publish(DiscoveredEndpoint.Create("10.0.0.1", 80, weight: 3));

        var current = await resolver.GetEndpointsAsync("orders");
        Assert.Equal(2, current.Version);
        Assert.Equal(3, current.Endpoints[0].Weight);
    }

    [Fact]
    public async Task Source_ThatThrows_IsRestartedAndTheErrorReported()
    {
        var provider = new ScriptedProvider { ThrowOnFirstRun = true };
        await using var services = Build(provider);
        var resolver = services.GetRequiredService<IEndpointResolver>();
        var pending = resolver.GetEndpointsAsync("orders").AsTask();

        await Eventually.TrueAsync(() => provider.Sources.TryGetValue("orders", out var s) && s.Runs >= 2 && s.Running, TimeSpan.FromSeconds(5), "restarted");
        provider.Sources["orders"].Publish(DiscoveredEndpoint.Create("10.0.0.1", 80));

        Assert.Equal(1, (await pending).Count);
    }

    private static ServiceProvider Build(ScriptedProvider provider, TimeSpan? timeout = null)
    {
        var services = new ServiceCollection();
        services.AddLogging(b => b.SetMinimumLevel(LogLevel.Trace));
        services.AddLodestarCore().Services.AddSingleton<IEndpointSourceProvider>(provider);
        services.Configure<LodestarOptions>(o => o.ResolutionTimeout = timeout ?? TimeSpan.FromSeconds(5));
        return services.BuildServiceProvider();
    }

    private sealed class ScriptedProvider : IEndpointSourceProvider
    {
        private int _created;

        public System.Collections.Concurrent.ConcurrentDictionary<string, ScriptedSource> Sources { get; } = new();

        public bool ThrowOnFirstRun { get; init; }

        public int Created => _created;

        public string Name => "scripted";

        public bool TryCreateSource(string serviceName, [NotNullWhen(true)] out IEndpointSource? source)
        {
            Interlocked.Increment(ref _created);
            var created = new ScriptedSource(ThrowOnFirstRun);
            Sources[serviceName] = created;
            source = created;
            return true;
        }
    }

    private sealed class ScriptedSource(bool throwOnFirstRun) : IEndpointSource
    {
        private IEndpointObserver? _observer;
        private int _runs;

        public int Runs => Volatile.Read(ref _runs);

        public bool Running => Volatile.Read(ref _observer) is not null;

        public async Task RunAsync(IEndpointObserver observer, CancellationToken cancellationToken)
        {
            if (Interlocked.Increment(ref _runs) == 1 && throwOnFirstRun)
            {
                throw new InvalidOperationException("first run fails");
            }

            Volatile.Write(ref _observer, observer);
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }

        public void Publish(params DiscoveredEndpoint[] endpoints) => _observer!.OnEndpoints(endpoints);

        public void Fail(Exception error) => _observer!.OnError(error);
    }
}
