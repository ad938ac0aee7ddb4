using System.Diagnostics;
using System.Net;
using Lodestar.AspNetCore.Registration;
using Lodestar.AspNetCore.Registration.Internal;
using Lodestar.AspNetCore.Tests.Infrastructure;
using Lodestar.Registration;
using Lodestar.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.AspNetCore.Tests.Registration;

public sealed class RegistrationHostingTests
{
    [Fact]
    public async Task Start_BoundToLoopback_RegistersTheBoundAddressOnceTheServerAnswers()
    {
        // Arrange
        var registrar = new FakeRegistrar();
        HttpStatusCode? probedAtRegistration = null;
        registrar.OnRegister = async registration =>
        {
            using var client = new HttpClient();
            probedAtRegistration = (await client.GetAsync($"http://{registration.Host}:{registration.Port}/healthz")).StatusCode;
        };

        // Act
        await using var app = await ServingApp.StartAsync(configure: b =>
        {
            b.Services.AddSingleton<IServiceRegistrar>(registrar);
            b.Services.AddLodestarRegistration(o =>
            {
                o.ServiceName = "orders";
                o.Tags.Add("v1");
                o.Metadata["zone"] = "a";
            });
        });
        await Eventually.TrueAsync(() => !registrar.Registered.IsEmpty, TimeSpan.FromSeconds(10), "the instance registers");

        // Assert
        var registered = registrar.Registered.Values.Single();
        Assert.Equal("orders", registered.ServiceName);
        Assert.Equal("127.0.0.1", registered.Host);
        Assert.Equal(app.Port, registered.Port);
        Assert.Equal("http", registered.Scheme);
        Assert.Equal(["v1"], registered.Tags);
        Assert.Equal("a", registered.Metadata["zone"]);
        Assert.Equal(HttpStatusCode.OK, probedAtRegistration);
    }

    [Fact]
    public async Task Start_RegistryFailsTwice_RetriesUntilRegistered()
    {
        // Arrange
        var registrar = new FakeRegistrar(failFirst: 2);

        // Act
        await using var app = await ServingApp.StartAsync(configure: b =>
        {
            b.Services.AddSingleton<IServiceRegistrar>(registrar);
            b.Services.AddLodestarRegistration(o => o.ServiceName = "orders");
        });
        await Eventually.TrueAsync(() => !registrar.Registered.IsEmpty, TimeSpan.FromSeconds(15), "the instance registers after two failures");

        // Assert
        Assert.Equal(3, registrar.Attempts);
        Assert.Equal(2, app.Logs.Entries.Count(e => e.EventId.Name == "RegisterFailed"));
    }

    [Fact]
    public async Task Stop_TwoRegistrars_RemovesFromBothBeforeTheServerStops()
    {
        // Arrange
        var consul = new FakeRegistrar("consul");
        var etcd = new FakeRegistrar("etcd");
        await using var app = await ServingApp.StartAsync(configure: b =>
        {
            b.Services.AddLodestarServing(o => o.DrainDelay = TimeSpan.FromMilliseconds(300));
            b.Services.AddSingleton<IServiceRegistrar>(consul);
            b.Services.AddSingleton<IServiceRegistrar>(etcd);
            b.Services.AddLodestarRegistration(o => o.ServiceName = "orders");
        });
        await Eventually.TrueAsync(() => !consul.Registered.IsEmpty && !etcd.Registered.IsEmpty, TimeSpan.FromSeconds(10), "both registries have the instance");
        long? listenerOpenAfterDeregistration = null;
        etcd.OnDeregister = async (_, _) =>
        {
            var (status, _) = await app.GetFreshAsync("/healthz");
            if (status == HttpStatusCode.OK)
            {
                listenerOpenAfterDeregistration = Stopwatch.GetTimestamp();
            }
        };

        // Act
        await app.App.StopAsync();

        // Assert
        Assert.Empty(consul.Registered);
        Assert.Empty(etcd.Registered);
        Assert.NotNull(listenerOpenAfterDeregistration);
    }

    [Fact]
    public async Task Stop_WhileTheRegistryAnswerIsInFlight_RemovesTheRegistrationItMayHaveApplied()
    {
        // Arrange: the registry applies the registration, but its answer has not come back when shutdown begins.
        var registrar = new FakeRegistrar("etcd");
        var landed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        registrar.AfterRegister = async (_, cancellationToken) =>
        {
            landed.TrySetResult();
            await Task.Delay(Timeout.Infinite, cancellationToken);
        };
        await using var app = await ServingApp.StartAsync(configure: b =>
        {
            b.Services.AddLodestarServing(o => o.DrainDelay = TimeSpan.FromMilliseconds(100));
            b.Services.AddSingleton<IServiceRegistrar>(registrar);
            b.Services.AddLodestarRegistration(o => o.ServiceName = "orders");
        });
        await landed.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.NotEmpty(registrar.Registered);

        // Act
        await app.App.StopAsync();

        // Assert: no ghost is left in the registry.
        Assert.Empty(registrar.Registered);
        Assert.Equal(["registered", "deregistered"], registrar.Events.Select(e => e.Event));
    }

    [Fact]
    public async Task Start_RegistrarsOptionNamesOne_UsesOnlyThatOne()
    {
        // Arrange
        var consul = new FakeRegistrar("consul");
        var etcd = new FakeRegistrar("etcd");

        // Act
        await using var app = await ServingApp.StartAsync(configure: b =>
        {
            b.Services.AddSingleton<IServiceRegistrar>(consul);
            b.Services.AddSingleton<IServiceRegistrar>(etcd);
            b.Services.AddLodestarRegistration(o =>
            {
                o.ServiceName = "orders";
                o.Registrars.Add("etcd");
            });
        });
        await Eventually.TrueAsync(() => !etcd.Registered.IsEmpty, TimeSpan.FromSeconds(10), "etcd has the instance");

        // Assert
        Assert.Equal(0, consul.Attempts);
    }

    [Fact]
    public async Task Start_PodIpConfigured_AdvertisesPodIp()
    {
        // Arrange
        var registrar = new FakeRegistrar();

        // Act
        await using var app = await ServingApp.StartAsync(configure: b =>
        {
            b.Configuration.AddInMemoryCollection([new KeyValuePair<string, string?>("POD_IP", "10.1.2.3")]);
            b.Services.AddSingleton<IServiceRegistrar>(registrar);
            b.Services.AddLodestarRegistration(o => o.ServiceName = "orders");
        });
        await Eventually.TrueAsync(() => !registrar.Registered.IsEmpty, TimeSpan.FromSeconds(10), "the instance registers");

        // Assert
        var registered = registrar.Registered.Values.Single();
        Assert.Equal("10.1.2.3", registered.Host);
        Assert.Equal(app.Port, registered.Port);
        Assert.Equal($"orders-10.1.2.3-{app.Port}", registered.EffectiveInstanceId);
    }

    [Fact]
    public async Task AddLodestarRegistration_NoServiceName_FailsAtStartup()
    {
        // Act
        var error = await Assert.ThrowsAnyAsync<Exception>(() => ServingApp.StartAsync(configure: b =>
            b.Services.AddLodestarRegistration(o => o.AdvertiseAddress = "0.0.0.0")));

        // Assert
        Assert.Contains("ServiceName", error.Message);
        Assert.Contains("wildcard", error.Message);
    }

    [Theory]
    [InlineData("http://0.0.0.0:8080", null, null, "192.0.2.7", 8080)]
    [InlineData("http://[::]:8080", null, null, "192.0.2.7", 8080)]
    [InlineData("http://+:8080", null, null, "192.0.2.7", 8080)]
    [InlineData("http://*:8080", null, null, "192.0.2.7", 8080)]
    [InlineData("http://localhost:8080", null, null, "127.0.0.1", 8080)]
    [InlineData("http://[::1]:8080", null, null, "::1", 8080)]
    [InlineData("http://0.0.0.0:8080", "10.0.0.5", null, "10.0.0.5", 8080)]
    [InlineData("http://0.0.0.0:8080", "10.0.0.5", "orders.internal", "orders.internal", 8080)]
    public void Resolve_BoundAddress_AdvertisesAConcreteAddress(string bound, string? podIp, string? configured, string expectedHost, int expectedPort)
    {
        // Arrange
        var options = new LodestarRegistrationOptions { ServiceName = "orders", AdvertiseAddress = configured };

        // Act
        var (host, port, scheme) = AdvertisedAddress.Resolve([bound], options, podIp, () => "192.0.2.7");

        // Assert
        Assert.Equal(expectedHost, host);
        Assert.Equal(expectedPort, port);
        Assert.Equal("http", scheme);
        Assert.False(AdvertisedAddress.IsWildcard(host));
    }

    [Fact]
    public void Resolve_HttpsAndHttpBindings_PrefersHttpUnlessSchemeSet()
    {
        // Arrange
        string[] bound = ["https://127.0.0.1:8443", "http://127.0.0.1:8080"];

        // Act
        var preferred = AdvertisedAddress.Resolve(bound, new LodestarRegistrationOptions { ServiceName = "orders" }, null, () => null);
        var https = AdvertisedAddress.Resolve(bound, new LodestarRegistrationOptions { ServiceName = "orders", Scheme = "https", AdvertisePort = 443 }, null, () => null);

        // Assert
        Assert.Equal(("127.0.0.1", 8080, "http"), preferred);
        Assert.Equal(("127.0.0.1", 443, "https"), https);
    }

    [Fact]
    public void Resolve_WildcardAndNoMachineAddress_ThrowsNamingTheFix()
    {
        // Act
        var error = Assert.Throws<InvalidOperationException>(() =>
            AdvertisedAddress.Resolve(["http://0.0.0.0:8080"], new LodestarRegistrationOptions { ServiceName = "orders" }, null, () => null));

        // Assert
        Assert.Contains("AdvertiseAddress", error.Message);
    }
}
