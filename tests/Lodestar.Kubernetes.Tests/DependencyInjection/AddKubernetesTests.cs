using System.Diagnostics;
using Lodestar.Discovery;
using Lodestar.Kubernetes.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Kubernetes;
using Lodestar.Testing.Tls;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Xunit.Abstractions;

namespace Lodestar.Kubernetes.Tests.DependencyInjection;

public sealed class AddKubernetesTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly TempDirectory _directory = new();
    private readonly CapturingLoggerProvider _logs = new();
    private FakeKubernetesApiServer _server = null!;

    public async Task InitializeAsync() => _server = await FakeKubernetesApiServer.StartAsync();

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _directory.Dispose();
    }

    private ServiceProvider Build(string kubeconfig, Action<IServiceCollection>? more = null)
    {
        var services = new ServiceCollection();
        services.AddLogging(b => b.AddProvider(_logs).SetMinimumLevel(LogLevel.Trace));
        services.AddLodestar(o => o.ResolutionTimeout = TimeSpan.FromSeconds(2)).AddKubernetes(o =>
        {
            o.KubeconfigPath = kubeconfig;
            o.Namespace = "shop";
            o.Backoff.InitialDelay = TimeSpan.FromMilliseconds(50);
            o.Backoff.MaxDelay = TimeSpan.FromMilliseconds(200);
        });
        more?.Invoke(services);
        return services.BuildServiceProvider();
    }

    [Fact]
    public async Task GetEndpointsAsync_WrongToken_ErrorNamesClusterAndNeverTheToken()
    {
        const string Secret = "wrong-token-5ecret-7c1f";
        await using var provider = Build(_server.WriteKubeconfig(_directory.Path, token: Secret));
        var resolver = provider.GetRequiredService<IEndpointResolver>();

        var error = await Assert.ThrowsAsync<EndpointResolutionException>(() => resolver.GetEndpointsAsync("orders", "kubernetes").AsTask());

        var text = error.ToString();
        Assert.Contains("401", error.Message, StringComparison.Ordinal);
        Assert.Contains(_server.Url.GetLeftPart(UriPartial.Authority), error.Message, StringComparison.Ordinal);
        Assert.Contains("context 'fake'", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, text, StringComparison.Ordinal);
        Assert.DoesNotContain(_server.Token, text, StringComparison.Ordinal);
        Assert.Contains(_logs.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("401", StringComparison.Ordinal));
        Assert.DoesNotContain(Secret, _logs.AllText, StringComparison.Ordinal);
        Assert.Contains(_server.Requests, r => r.StartsWith("REJECTED 401", StringComparison.Ordinal));
    }

    [Fact]
    public async Task GetEndpointsAsync_UntrustedServerCertificate_ErrorNamesClusterAndTheCause()
    {
        using var otherAuthority = TestCertificates.CreateAuthority("Some Other CA");
        await using var provider = Build(_server.WriteKubeconfig(_directory.Path, caPem: otherAuthority.ExportCertificatePem()));
        var resolver = provider.GetRequiredService<IEndpointResolver>();

        var error = await Assert.ThrowsAsync<EndpointResolutionException>(() => resolver.GetEndpointsAsync("orders", "kubernetes").AsTask());

        Assert.Contains("TLS connection to Kubernetes API server " + _server.Url.GetLeftPart(UriPartial.Authority), error.Message, StringComparison.Ordinal);
        Assert.Contains("context 'fake'", error.Message, StringComparison.Ordinal);
        Assert.Contains("not signed by the configured certificate authority", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(_server.Token, error.ToString() + _logs.AllText, StringComparison.Ordinal);
        Assert.Contains(_logs.Entries, e => e.Message.Contains("not signed by the configured certificate authority", StringComparison.Ordinal));
        Assert.DoesNotContain(_server.Requests, r => r.StartsWith("LIST", StringComparison.Ordinal));
    }

    [Fact]
    public void AddKubernetes_Configuration_BindsSectionAndValidatesAtStartup()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Lodestar:Kubernetes:Namespace"] = "shop",
            ["Lodestar:Kubernetes:PortName"] = "grpc",
            ["Lodestar:Kubernetes:Qps"] = "20",
        }).Build();
        var services = new ServiceCollection().AddLogging().AddSingleton<IConfiguration>(configuration);
        services.AddLodestar().AddKubernetes();
        using var provider = services.BuildServiceProvider();

        var options = provider.GetRequiredService<IOptions<KubernetesSourceOptions>>().Value;
        Assert.Equal(("shop", "grpc", 20.0, 10), (options.Namespace, options.PortName, options.Qps, options.Burst));

        var bad = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Lodestar:Kubernetes:Qps"] = "0",
            ["Lodestar:Kubernetes:Namespace"] = "Not_A_Namespace",
        }).Build();
        var badServices = new ServiceCollection().AddLogging().AddSingleton<IConfiguration>(bad);
        badServices.AddLodestar().AddKubernetes();
        using var badProvider = badServices.BuildServiceProvider();
        var failure = Assert.Throws<OptionsValidationException>(() => badProvider.GetRequiredService<IStartupValidator>().Validate());
        Assert.Contains("KubernetesSourceOptions.Qps", failure.Message, StringComparison.Ordinal);
        Assert.Contains("KubernetesSourceOptions.Namespace", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddKubernetes_SharedWatchKeys_BindAndTheLimitIsValidated()
    {
        static ServiceProvider Bind(string limit)
        {
            var services = new ServiceCollection().AddLogging().AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Lodestar:Kubernetes:ShareNamespaceWatches"] = "false",
                ["Lodestar:Kubernetes:SharedWatchSelectorLimit"] = limit,
            }).Build());
            services.AddLodestar().AddKubernetes();
            return services.BuildServiceProvider();
        }

        Assert.True(new KubernetesSourceOptions().ShareNamespaceWatches);
        Assert.Equal(KubernetesSourceOptions.DefaultSharedWatchSelectorLimit, new KubernetesSourceOptions().SharedWatchSelectorLimit);
        using (var good = Bind("20"))
        {
            good.GetRequiredService<IStartupValidator>().Validate();
            var options = good.GetRequiredService<IOptions<KubernetesSourceOptions>>().Value;
            Assert.Equal((false, 20), (options.ShareNamespaceWatches, options.SharedWatchSelectorLimit));
        }

        using (var bad = Bind("0"))
        {
            var failure = Assert.Throws<OptionsValidationException>(() => bad.GetRequiredService<IStartupValidator>().Validate());
            Assert.Contains("KubernetesSourceOptions.SharedWatchSelectorLimit is 0", failure.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void AddKubernetes_BackoffSection_BindsAndTheOldKeysStillForwardToIt()
    {
        static KubernetesSourceOptions Bind(Dictionary<string, string?> values)
        {
            var services = new ServiceCollection().AddLogging().AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(values).Build());
            services.AddLodestar().AddKubernetes();
            using var provider = services.BuildServiceProvider();
            provider.GetRequiredService<IStartupValidator>().Validate();
            return provider.GetRequiredService<IOptions<KubernetesSourceOptions>>().Value;
        }

        var current = Bind(new()
        {
            ["Lodestar:Kubernetes:Backoff:InitialDelay"] = "00:00:01",
            ["Lodestar:Kubernetes:Backoff:MaxDelay"] = "00:00:20",
            ["Lodestar:Kubernetes:Backoff:ResetAfter"] = "00:05:00",
        });
        var old = Bind(new()
        {
            ["Lodestar:Kubernetes:RetryInitialDelay"] = "00:00:00.500",
            ["Lodestar:Kubernetes:RetryMaxDelay"] = "00:00:10",
            ["Lodestar:Kubernetes:BackoffResetAfter"] = "00:03:00",
        });
        var both = Bind(new()
        {
            ["Lodestar:Kubernetes:RetryInitialDelay"] = "00:00:00.500",
            ["Lodestar:Kubernetes:Backoff:InitialDelay"] = "00:00:02",
        });

        Assert.Equal((TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(20), TimeSpan.FromMinutes(5)), (current.Backoff.InitialDelay, current.Backoff.MaxDelay, current.Backoff.ResetAfter));
        Assert.Equal((TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(10), TimeSpan.FromMinutes(3)), (old.Backoff.InitialDelay, old.Backoff.MaxDelay, old.Backoff.ResetAfter));
#pragma warning disable CS0618 // the obsolete aliases are what is tested
        Assert.Equal((old.Backoff.InitialDelay, old.Backoff.MaxDelay, old.Backoff.ResetAfter), (old.RetryInitialDelay, old.RetryMaxDelay, old.BackoffResetAfter));
#pragma warning restore CS0618
        Assert.Equal(TimeSpan.FromSeconds(2), both.Backoff.InitialDelay);
        Assert.Equal((BackoffOptions.DefaultInitialDelay, KubernetesSourceOptions.DefaultMaxListResponseBytes, KubernetesSourceOptions.DefaultMaxWatchEventBytes),
            (new KubernetesSourceOptions().Backoff.InitialDelay, new KubernetesSourceOptions().MaxListResponseBytes, new KubernetesSourceOptions().MaxWatchEventBytes));
    }

    [Fact]
    public void AddKubernetes_BadBackoffCapsOrStallTimeout_FailsAtStartupNamingEachSetting()
    {
        var bad = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Lodestar:Kubernetes:Backoff:InitialDelay"] = "00:00:10",
            ["Lodestar:Kubernetes:Backoff:MaxDelay"] = "00:00:01",
            ["Lodestar:Kubernetes:MaxListResponseBytes"] = "1000",
            ["Lodestar:Kubernetes:MaxWatchEventBytes"] = "2147483648",
            ["Lodestar:Kubernetes:WatchStallTimeout"] = "00:00:30",
        }).Build();
        var services = new ServiceCollection().AddLogging().AddSingleton<IConfiguration>(bad);
        services.AddLodestar().AddKubernetes();
        using var provider = services.BuildServiceProvider();

        var failure = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains("Lodestar:Kubernetes:Backoff:MaxDelay", failure.Message, StringComparison.Ordinal);
        Assert.Contains("KubernetesSourceOptions.MaxListResponseBytes", failure.Message, StringComparison.Ordinal);
        Assert.Contains("KubernetesSourceOptions.MaxWatchEventBytes", failure.Message, StringComparison.Ordinal);
        Assert.Contains("KubernetesSourceOptions.WatchStallTimeout", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HttpClient_PodRemovedFromSlice_StopsReceivingRequestsPromptly()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        // Each backend listens on its own port, so each sits in its own slice (as pods with different target ports do).
        _server.Upsert(FakeEndpointSlice.Create("shop", "orders-a", "orders", a.Port, FakeEndpoint.ReadyAt("127.0.0.1", "orders-a")));
        _server.Upsert(FakeEndpointSlice.Create("shop", "orders-b", "orders", b.Port, FakeEndpoint.ReadyAt("127.0.0.1", "orders-b")));
        await using var provider = Build(_server.WriteKubeconfig(_directory.Path), s => s.AddHttpClient("orders").AddLodestar(o => o.Source = "kubernetes"));
        var client = provider.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        for (var i = 0; i < 200 && (a.Requests == 0 || b.Requests == 0); i++)
        {
            (await client.GetAsync("http://orders/")).EnsureSuccessStatusCode();
        }

        Assert.True(a.Requests > 0 && b.Requests > 0, "both pods take traffic before the change");
        await Eventually.TrueAsync(() => _server.OpenWatches == 1, TimeSpan.FromSeconds(10), "the source watches");

        // Act: the pod behind b leaves its slice; requests keep flowing while the watch event travels.
        var sent = new List<(long Started, string Instance)>();
        var eventAt = Stopwatch.GetTimestamp();
        _server.Upsert(FakeEndpointSlice.Create("shop", "orders-b", "orders", b.Port));
        var loop = Stopwatch.StartNew();
        while (loop.Elapsed < TimeSpan.FromSeconds(1) && sent.Count < 5_000)
        {
            var started = Stopwatch.GetTimestamp();
            using var response = await client.GetAsync("http://orders/");
            sent.Add((started, response.Headers.GetValues("X-Instance").Single()));
        }

        // Assert: the last request routed to b started this long after the event was sent.
        var lastToB = sent.Where(s => s.Instance == "b").Select(s => s.Started).DefaultIfEmpty(eventAt).Max();
        var latency = Stopwatch.GetElapsedTime(eventAt, lastToB);
        output.WriteLine($"removal-to-no-traffic: {latency.TotalMilliseconds:0.0} ms over {sent.Count} requests ({sent.Count(s => s.Instance == "b")} still reached b)");
        Assert.True(latency < TimeSpan.FromSeconds(1), $"traffic to the removed pod stopped after {latency.TotalMilliseconds:0.0} ms");
        var bBefore = b.Requests;
        for (var i = 0; i < 50; i++)
        {
            (await client.GetAsync("http://orders/")).EnsureSuccessStatusCode();
        }

        Assert.Equal(bBefore, b.Requests);
    }
}
