using Lodestar.Etcd.Client.Internal;
using Lodestar.Etcd.Discovery.Internal;
using Lodestar.Etcd.Tests.Infrastructure;
using Lodestar.Discovery;
using Lodestar.Testing;
using Lodestar.Testing.Etcd;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Etcd.Tests.Client;

/// <summary>Auth against a dedicated etcd with auth enabled; simple tokens expire after 1 s of disuse to force renewals.</summary>
public sealed class EtcdAuthTests
{
    private const string Password = "Pa55-w0rd-never-logged";
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task UsernamePassword_SourceAndRegistrar_WorkAndSecretsNeverLogged()
    {
        // Arrange
        await using var etcd = await EtcdServer.StartAsync("--auth-token-ttl=1");
        await etcd.EnableAuthAsync("root", Password);
        await using var harness = EtcdHarness.Create(etcd, o =>
        {
            o.Username = "root";
            o.Password = Password;
        });

        // Act: register and discover; wait past the token TTL so the next calls need a fresh token.
        await using var handle = await harness.Registrar.RegisterAsync(EtcdHarness.Instance("orders", 5001, "i-1"), default);
        var set = await harness.Resolver.GetEndpointsAsync("orders", "etcd");
        await Task.Delay(TimeSpan.FromSeconds(2.5));
        await harness.Registrar.DeregisterAsync("orders", "i-1", default);
        await using var second = await harness.Registrar.RegisterAsync(EtcdHarness.Instance("orders", 5002, "i-2"), default);
        using var tracker = new SetTracker(harness.Resolver, "orders");
        await Eventually.TrueAsync(() => tracker.Addresses.SequenceEqual(["127.0.0.1:5002"]), s_wait, "changes after a token renewal");

        // Assert
        Assert.Equal("127.0.0.1:5001", Assert.Single(set.Endpoints).Address);
        Assert.Contains(harness.Logs.Entries, e => e.EventId.Name == "EtcdTokenRejected");
        Assert.DoesNotContain(Password, harness.Logs.AllText, StringComparison.Ordinal);
        // etcd's simple tokens look like 16 letters, a dot and a number.
        Assert.DoesNotMatch(@"\b[A-Za-z]{16}\.[0-9]+\b", harness.Logs.AllText);
        Assert.DoesNotContain(Password, await etcd.GetAsync("orders/i-2") ?? string.Empty, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WrongPassword_ErrorNamesUserButNeverPasswordOrToken()
    {
        // Arrange
        await using var etcd = await EtcdServer.StartAsync();
        await etcd.EnableAuthAsync("root", Password);
        const string Wrong = "Wr0ng-secret-value";
        await using var harness = EtcdHarness.Create(etcd, o =>
        {
            o.Username = "root";
            o.Password = Wrong;
        }, services => services.Configure<LodestarOptions>(o => o.ResolutionTimeout = TimeSpan.FromSeconds(1)));
        var provider = harness.Services.GetServices<IEndpointSourceProvider>().OfType<EtcdEndpointSourceProvider>().Single();
        Assert.True(provider.TryCreateSource("orders", out var source));
        var observer = new RecordingObserver();
        using var stop = new CancellationTokenSource();

        // Act
        var run = source.RunAsync(observer, stop.Token);
        await Eventually.TrueAsync(() => observer.Errors.Count >= 1, s_wait, "an auth error");
        await stop.CancelAsync();
        await run.WaitAsync(s_wait);
        var registerError = await Assert.ThrowsAsync<EtcdException>(() => harness.Registrar.RegisterAsync(EtcdHarness.Instance("orders", 5001), default));
        var resolveError = await Assert.ThrowsAsync<EndpointResolutionException>(async () =>
        {
            using var cts = new CancellationTokenSource();
            await harness.Resolver.GetEndpointsAsync("orders", "etcd", cts.Token).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
        });

        // Assert
        var texts = observer.Errors.Select(e => e.ToString()).Append(registerError.ToString()).Append(resolveError.ToString()).Append(harness.Logs.AllText).ToList();
        Assert.Contains("user 'root'", observer.Errors.First().Message, StringComparison.Ordinal);
        Assert.All(texts, t => Assert.DoesNotContain(Wrong, t, StringComparison.Ordinal));
        Assert.All(texts, t => Assert.DoesNotContain(Password, t, StringComparison.Ordinal));
    }
}
