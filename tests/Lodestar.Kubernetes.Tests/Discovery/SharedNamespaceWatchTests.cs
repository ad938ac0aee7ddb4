using Lodestar.Kubernetes.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Kubernetes;

namespace Lodestar.Kubernetes.Tests.Discovery;

/// <summary>The shared namespace watch against the fake API server in JSON.</summary>
public sealed class SharedNamespaceWatchJsonTests : SharedNamespaceWatchTests
{
    protected override KubernetesEncoding Encoding => KubernetesEncoding.Json;
}

/// <summary>The shared namespace watch against the fake API server in protobuf.</summary>
public sealed class SharedNamespaceWatchProtobufTests : SharedNamespaceWatchTests
{
    protected override KubernetesEncoding Encoding => KubernetesEncoding.Protobuf;
}

/// <summary>
/// Several services of one namespace on one LIST+WATCH: the fake API server counts the requests and the open watches,
/// run once per wire encoding by the derived classes.
/// </summary>
public abstract class SharedNamespaceWatchTests : IAsyncLifetime
{
    private static readonly TimeSpan s_wait = SourceHarness.Wait;
    private FakeKubernetesApiServer _server = null!;

    /// <summary>Gets the encoding every source of the suite asks for.</summary>
    protected abstract KubernetesEncoding Encoding { get; }

    public async Task InitializeAsync() => _server = await FakeKubernetesApiServer.StartAsync();

    public async Task DisposeAsync()
    {
        var (protobuf, json) = (_server.ProtobufResponses, _server.JsonResponses);
        await _server.DisposeAsync();
        Assert.Equal(0, Encoding == KubernetesEncoding.Json ? protobuf : json);
    }

    private Task<SourceHarness> StartAsync(string service = "svc-0", Action<KubernetesSourceOptions>? configure = null)
        => SourceHarness.StartAsync(_server, service, o =>
        {
            o.Encoding = Encoding;
            configure?.Invoke(o);
        });

    private static FakeEndpointSlice Slice(string service, string address, string suffix = "a", string ns = "shop")
        => FakeEndpointSlice.Create(ns, service + "-" + suffix, service, 8080, FakeEndpoint.ReadyAt(address));

    private static string Address(int i) => $"10.{i / 250}.{i % 250}.1";

    private string[] Lists => _server.Requests.Where(r => r.StartsWith("LIST", StringComparison.Ordinal)).ToArray();

    private string[] Watches => _server.Requests.Where(r => r.StartsWith("WATCH", StringComparison.Ordinal)).ToArray();

    /// <summary>Creates one slice for each of <paramref name="count"/> services and follows them all (svc-0 through the harness).</summary>
    private async Task<(SourceHarness Harness, RecordingObserver[] Observers)> FollowAsync(int count, Action<KubernetesSourceOptions>? configure = null)
    {
        for (var i = 0; i < count; i++)
        {
            _server.Upsert(Slice("svc-" + i, Address(i)));
        }

        var harness = await StartAsync(configure: configure);
        var observers = new RecordingObserver[count];
        observers[0] = harness.Observer;
        for (var i = 1; i < count; i++)
        {
            observers[i] = harness.Follow("svc-" + i);
        }

        await Eventually.TrueAsync(() => observers.Select((o, i) => o.Has(Address(i) + ":8080")).All(static b => b), s_wait, "every service has its endpoint");
        return (harness, observers);
    }

    [Fact]
    public async Task RunAsync_TenServicesOfOneNamespace_OneWatchNamingThemAll()
    {
        var (harness, observers) = await FollowAsync(10);
        await using var _ = harness;

        await Eventually.TrueAsync(() => _server.OpenWatches == 1, s_wait, "one watch serves the ten services");
        Assert.Equal(1, harness.SharedWatches.Count);
        Assert.Contains("labelSelector=kubernetes.io%2Fservice-name%20in%20%28" + string.Join("%2C", Enumerable.Range(0, 10).Select(i => "svc-" + i).Order(StringComparer.Ordinal)) + "%29",
            Lists[^1], StringComparison.Ordinal);
        Assert.True(Lists.Length <= 10, $"at most one list per joining service, got {Lists.Length}");

        // A change reaches its service only.
        _server.Upsert(Slice("svc-3", "10.9.9.9", "b"));
        await Eventually.TrueAsync(() => observers[3].Has(Address(3) + ":8080", "10.9.9.9:8080"), s_wait, "svc-3's change is applied");
        Assert.True(observers[4].Has(Address(4) + ":8080"));
        Assert.All(observers, o => Assert.Empty(o.Errors));
        Assert.Equal(1, _server.OpenWatches);
    }

    [Fact]
    public async Task RunAsync_HundredServicesOfOneNamespace_OneWatchOfTheWholeNamespace()
    {
        var (harness, observers) = await FollowAsync(100);
        await using var _ = harness;

        await Eventually.TrueAsync(() => _server.OpenWatches == 1, s_wait, "one watch serves the hundred services");
        Assert.Equal(1, harness.SharedWatches.Count);
        Assert.Contains("labelSelector=kubernetes.io%2Fservice-name&", Lists[^1], StringComparison.Ordinal);
        Assert.Contains("labelSelector=kubernetes.io%2Fservice-name&", Watches[^1], StringComparison.Ordinal);

        // A slice of a service nobody follows is kept out of every member.
        _server.Upsert(Slice("unfollowed", "10.8.8.8"));
        _server.Upsert(Slice("svc-99", "10.9.9.9", "b"));
        await Eventually.TrueAsync(() => observers[99].Has(Address(99) + ":8080", "10.9.9.9:8080"), s_wait, "svc-99's change is applied");
        Assert.All(observers, o => Assert.DoesNotContain("10.8.8.8:8080", o.Addresses));
        Assert.All(observers, o => Assert.Empty(o.Errors));
    }

    [Fact]
    public async Task RunAsync_SelectorLongerThanARequestLineTakes_WatchesTheWholeNamespace()
    {
        // 70 names of 60 characters make a selector of some 4,300 characters, under the service limit.
        var names = Enumerable.Range(0, 70).Select(static i => ("svc-" + i + "-").PadRight(60, 'x')).ToArray();
        for (var i = 0; i < names.Length; i++)
        {
            _server.Upsert(Slice(names[i], Address(i)));
        }

        await using var harness = await StartAsync(names[0], static o => o.SharedWatchSelectorLimit = 1_000);
        var observers = names.Skip(1).Select(harness.Follow).Prepend(harness.Observer).ToArray();

        await Eventually.TrueAsync(() => observers.Select((o, i) => o.Has(Address(i) + ":8080")).All(static b => b) && _server.OpenWatches == 1, s_wait,
            "every service has its endpoint on one watch");
        Assert.Contains("labelSelector=kubernetes.io%2Fservice-name&", Lists[^1], StringComparison.Ordinal);
        Assert.All(Lists, static l => Assert.True(l.Length < 5_000, "no request line carries the long selector"));
    }

    [Fact]
    public async Task RunAsync_ServiceJoinsUncovered_RelistsWithTheNewSelectorForIt()
    {
        var (harness, observers) = await FollowAsync(1);
        await using var _ = harness;
        await Eventually.TrueAsync(() => _server.OpenWatches == 1, s_wait, "watching");
        Assert.Contains("labelSelector=kubernetes.io%2Fservice-name%3Dsvc-0&", Lists[0], StringComparison.Ordinal);
        var snapshots = observers[0].SnapshotCount;
        _server.Upsert(Slice("payments", "10.7.0.1"));

        var payments = harness.Follow("payments");

        await Eventually.TrueAsync(() => payments.Has("10.7.0.1:8080") && _server.OpenWatches == 1, s_wait, "the joining service is served on one watch");
        Assert.Equal(2, Lists.Length);
        Assert.Contains("labelSelector=kubernetes.io%2Fservice-name%20in%20%28payments%2Csvc-0%29", Lists[1], StringComparison.Ordinal);
        Assert.Equal(snapshots, observers[0].SnapshotCount);
        _server.Upsert(Slice("payments", "10.7.0.2", "b"));
        _server.Upsert(Slice("svc-0", "10.0.9.9", "b"));
        await Eventually.TrueAsync(() => payments.Has("10.7.0.1:8080", "10.7.0.2:8080") && observers[0].Has(Address(0) + ":8080", "10.0.9.9:8080"), s_wait,
            "both follow their changes on the new watch");
        Assert.Empty(payments.Errors);
        Assert.Empty(observers[0].Errors);
    }

    [Fact]
    public async Task RunAsync_ServiceJoinsCoveredByTheWholeNamespace_ServedWithoutARequest()
    {
        var (harness, _) = await FollowAsync(2, static o => o.SharedWatchSelectorLimit = 1);
        await using var __ = harness;
        await Eventually.TrueAsync(() => _server.OpenWatches == 1, s_wait, "watching");
        var lists = Lists.Length;
        var watches = Watches.Length;
        _server.Upsert(Slice("payments", "10.7.0.1"));

        var payments = harness.Follow("payments");

        await Eventually.TrueAsync(() => payments.Has("10.7.0.1:8080"), s_wait, "the joining service is served from what the hub knows");
        Assert.Equal(lists, Lists.Length);
        Assert.Equal(watches, Watches.Length);
        Assert.Equal(1, _server.OpenWatches);
    }

    [Fact]
    public async Task RunAsync_ServiceLeaves_NoRequestAndTheOthersGoOn()
    {
        var (harness, observers) = await FollowAsync(2);
        await using var _ = harness;
        _server.Upsert(Slice("payments", "10.7.0.1"));
        using var stop = new CancellationTokenSource();
        var payments = harness.Follow("payments", stop.Token, out var run);
        await Eventually.TrueAsync(() => payments.Has("10.7.0.1:8080") && _server.OpenWatches == 1, s_wait, "three services on one watch");
        var (lists, watches) = (Lists.Length, Watches.Length);

        await stop.CancelAsync();
        await run.WaitAsync(s_wait);

        Assert.Equal(2, harness.SharedWatches.Hubs.Single().ServiceCount);
        _server.Upsert(Slice("svc-1", "10.0.9.9", "b"));
        await Eventually.TrueAsync(() => observers[1].Has(Address(1) + ":8080", "10.0.9.9:8080"), s_wait, "the others follow their changes");
        Assert.Equal((lists, watches), (Lists.Length, Watches.Length));
        Assert.Equal(1, _server.OpenWatches);
    }

    [Fact]
    public async Task RunAsync_LastServiceOfANamespaceLeaves_ItsWatchCloses()
    {
        var (harness, _) = await FollowAsync(1);
        await using var __ = harness;
        _server.Upsert(Slice("billing", "10.6.0.1", ns: "accounts"));
        using var stop = new CancellationTokenSource();
        var billing = harness.Follow("billing.accounts", stop.Token, out var run);
        await Eventually.TrueAsync(() => billing.Has("10.6.0.1:8080") && _server.OpenWatches == 2, s_wait, "two namespaces, two watches");

        await stop.CancelAsync();
        await run.WaitAsync(s_wait);

        Assert.Equal(1, harness.SharedWatches.Count);
        await Eventually.TrueAsync(() => _server.OpenWatches == 1, s_wait, "the namespace nobody follows is no longer watched");
    }

    [Fact]
    public async Task RunAsync_SharedWatchAnswered410_OneRelistForAll()
    {
        var (harness, observers) = await FollowAsync(3);
        await using var _ = harness;
        await Eventually.TrueAsync(() => _server.OpenWatches == 1, s_wait, "watching");
        var lists = Lists.Length;

        // The stream goes silent, changes are made and compacted away, then the connection drops: the resume point is gone.
        _server.StallWatches();
        _server.Upsert(Slice("svc-0", "10.0.9.9", "b"));
        _server.Delete("shop", "svc-1-a");
        _server.Upsert(Slice("svc-1", "10.1.9.9", "b"));
        _server.Compact();
        _server.EndWatches(abort: true);

        await Eventually.TrueAsync(() => observers[0].Has(Address(0) + ":8080", "10.0.9.9:8080") && observers[1].Has("10.1.9.9:8080"), s_wait,
            "the re-list catches every service up");
        await Eventually.TrueAsync(() => _server.OpenWatches == 1, s_wait, "one new watch");
        Assert.Equal(lists + 1, Lists.Length);
        Assert.True(observers[2].Has(Address(2) + ":8080"));
        Assert.All(observers, o => Assert.Empty(o.Errors));
    }

    [Fact]
    public async Task RunAsync_SharedStreamCut_ResumesForAllFromTheLastResourceVersion()
    {
        var (harness, observers) = await FollowAsync(3);
        await using var _ = harness;
        await Eventually.TrueAsync(() => _server.OpenWatches == 1, s_wait, "watching");
        _server.Upsert(Slice("svc-2", "10.2.9.9", "b"));
        await Eventually.TrueAsync(() => observers[2].Has(Address(2) + ":8080", "10.2.9.9:8080"), s_wait, "the event is applied");
        var lastSeen = _server.ResourceVersion;
        var (lists, watches) = (Lists.Length, Watches.Length);

        _server.EndWatches(abort: true);

        await Eventually.TrueAsync(() => Watches.Length == watches + 1 && _server.OpenWatches == 1, s_wait, "one new watch for all");
        Assert.Contains("resourceVersion=" + lastSeen + "&", Watches[^1], StringComparison.Ordinal);
        Assert.Equal(lists, Lists.Length);
        _server.Upsert(Slice("svc-0", "10.0.9.9", "b"));
        _server.Upsert(Slice("svc-1", "10.1.9.9", "b"));
        await Eventually.TrueAsync(() => observers[0].Has(Address(0) + ":8080", "10.0.9.9:8080") && observers[1].Has(Address(1) + ":8080", "10.1.9.9:8080"),
            s_wait, "events flow to every service on the new watch");
        Assert.All(observers, o => Assert.Empty(o.Errors));
    }

    [Fact]
    public async Task RunAsync_SharedWatchFails_EveryMemberToldWithItsLastGoodSetKept()
    {
        var (harness, observers) = await FollowAsync(3);
        await using var _ = harness;
        await Eventually.TrueAsync(() => _server.OpenWatches == 1, s_wait, "watching");

        _server.SendErrorEvent(500, "etcdserver: request timed out");

        await Eventually.TrueAsync(() => observers.All(static o => o.Errors.Count > 0), s_wait, "every member hears of the failure");
        for (var i = 0; i < observers.Length; i++)
        {
            var error = observers[i].Errors[0];
            Assert.IsType<KubernetesApiException>(error);
            Assert.Contains($"service 'svc-{i}' in namespace 'shop'", error.Message, StringComparison.Ordinal);
            Assert.Contains("etcdserver: request timed out", error.Message, StringComparison.Ordinal);
            Assert.Contains(_server.Url.GetLeftPart(UriPartial.Authority), error.Message, StringComparison.Ordinal);
            Assert.True(observers[i].Has(Address(i) + ":8080"), "the last good set stays in force");
        }

        _server.Upsert(Slice("svc-1", "10.1.9.9", "b"));
        await Eventually.TrueAsync(() => observers[1].Has(Address(1) + ":8080", "10.1.9.9:8080"), s_wait, "the shared watch resumes");
        await Eventually.TrueAsync(() => _server.OpenWatches == 1, s_wait, "one watch again, once the server has seen the old one closed");
    }

    [Fact]
    public async Task RunAsync_SliceWithoutServiceLabel_ReportedToEveryMemberAndSkipped()
    {
        var (harness, observers) = await FollowAsync(2);
        await using var _ = harness;
        await Eventually.TrueAsync(() => _server.OpenWatches == 1, s_wait, "watching");

        // A selector naming two services cannot say whose this slice is.
        _server.SendRawLine($$$"""{"type":"ADDED","object":{"metadata":{"name":"stray-a","resourceVersion":"{{{_server.ResourceVersion}}}"},"addressType":"IPv4","endpoints":[{"addresses":["10.5.5.5"],"conditions":{"ready":true}}],"ports":[{"port":8080}]}}""");
        _server.Upsert(Slice("svc-1", "10.1.9.9", "b"));

        await Eventually.TrueAsync(() => observers[1].Has(Address(1) + ":8080", "10.1.9.9:8080"), s_wait, "the next event applies");
        for (var i = 0; i < observers.Length; i++)
        {
            var error = Assert.Single(observers[i].Errors);
            Assert.Contains($"service 'svc-{i}' in namespace 'shop'", error.Message, StringComparison.Ordinal);
            Assert.Contains("without a kubernetes.io/service-name label (first: 'stray-a')", error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("10.5.5.5:8080", observers[i].Addresses);
        }
    }

    [Fact]
    public async Task RunAsync_ServicesOfTwoNamespaces_TwoWatches()
    {
        _server.Upsert(Slice("svc-0", Address(0)));
        _server.Upsert(Slice("billing", "10.6.0.1", ns: "accounts"));
        _server.Upsert(Slice("ledger", "10.6.0.2", ns: "accounts"));
        await using var harness = await StartAsync();

        var billing = harness.Follow("billing.accounts");
        var ledger = harness.Follow("ledger.accounts");

        await Eventually.TrueAsync(() => harness.Observer.Has(Address(0) + ":8080") && billing.Has("10.6.0.1:8080") && ledger.Has("10.6.0.2:8080"), s_wait,
            "each service has its endpoint");
        await Eventually.TrueAsync(() => _server.OpenWatches == 2, s_wait, "one watch per namespace");
        Assert.Equal(2, harness.SharedWatches.Count);
    }

    [Fact]
    public async Task RunAsync_SharingOff_OneListAndWatchPerService()
    {
        var (harness, observers) = await FollowAsync(3, static o => o.ShareNamespaceWatches = false);
        await using var _ = harness;

        await Eventually.TrueAsync(() => _server.OpenWatches == 3, s_wait, "one watch per service");
        Assert.Equal(3, Lists.Length);
        Assert.Equal(0, harness.SharedWatches.Count);
        Assert.All(Enumerable.Range(0, 3), i => Assert.Contains(Lists, l => l.Contains("service-name%3Dsvc-" + i + "&", StringComparison.Ordinal)));
        Assert.All(observers, o => Assert.Empty(o.Errors));
    }
}
