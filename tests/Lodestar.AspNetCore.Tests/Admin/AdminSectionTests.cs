using System.Text.Json;
using Lodestar.Diagnostics;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.AspNetCore.Tests.Admin;

public sealed class AdminSectionTests
{
    [Fact]
    public async Task MapLodestarAdmin_SectionRegistered_JsonHasItUnderSectionsWithSecretsMasked()
    {
        // Arrange
        await using var app = await AdminApp.StartAsync(services: s => s.AddSingleton<ILodestarStatusSection>(new FakeSection("fake", w =>
        {
            w.WriteStartObject();
            w.WriteString("server", "https://admin:hunter2@cp.example:443");
            w.WriteString("detail", "rejected; Authorization: Bearer abc.def.ghi");
            w.WriteNumber("count", 3);
            w.WriteStartArray("types");
            w.WriteStartObject();
            w.WriteString("type", "Cluster");
            w.WriteNull("lastNack");
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
        })));

        // Act
        var json = await app.GetJsonAsync();
        var raw = json.GetRawText();

        // Assert
        var fake = json.GetProperty("sections").GetProperty("fake");
        Assert.Equal(3, fake.GetProperty("count").GetInt32());
        Assert.Equal("Cluster", fake.GetProperty("types")[0].GetProperty("type").GetString());
        Assert.Equal(JsonValueKind.Null, fake.GetProperty("types")[0].GetProperty("lastNack").ValueKind);
        Assert.Contains("cp.example:443", fake.GetProperty("server").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", raw, StringComparison.Ordinal);
        Assert.DoesNotContain("abc.def.ghi", raw, StringComparison.Ordinal);
        Assert.Equal("orders", json.GetProperty("services")[0].GetProperty("service").GetString()); // the inspection is still there
    }

    [Fact]
    public async Task MapLodestarAdmin_NoSectionRegistered_JsonHasEmptySections()
    {
        // Arrange
        await using var app = await AdminApp.StartAsync();

        // Act
        var json = await app.GetJsonAsync();

        // Assert
        Assert.Equal(JsonValueKind.Object, json.GetProperty("sections").ValueKind);
        Assert.Empty(json.GetProperty("sections").EnumerateObject());
    }

    [Fact]
    public async Task MapLodestarAdmin_SectionThrowsOrWritesInvalidJson_ShownAsErrorAndOtherSectionsStay()
    {
        // Arrange
        await using var app = await AdminApp.StartAsync(services: s =>
        {
            s.AddSingleton<ILodestarStatusSection>(new FakeSection("broken", _ => throw new InvalidOperationException("control plane gone, password=s3cret")));
            s.AddSingleton<ILodestarStatusSection>(new FakeSection("unfinished", w => w.WriteStartObject()));
            s.AddSingleton<ILodestarStatusSection>(new FakeSection("fine", w => w.WriteStringValue("ok")));
            s.AddSingleton<ILodestarStatusSection>(new FakeSection("fine", w => w.WriteStringValue("second")));
        });

        // Act
        var json = await app.GetJsonAsync();
        var sections = json.GetProperty("sections");

        // Assert
        var broken = sections.GetProperty("broken").GetProperty("error").GetString();
        Assert.Contains("'broken' failed", broken, StringComparison.Ordinal);
        Assert.Contains("control plane gone", broken, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret", json.GetRawText(), StringComparison.Ordinal);
        Assert.Contains("'unfinished' failed", sections.GetProperty("unfinished").GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal("ok", sections.GetProperty("fine").GetString());
        Assert.Equal("second", sections.GetProperty("fine (2)").GetString());
    }

    [Fact]
    public async Task MapLodestarAdmin_SectionWritesTooMuch_ShownAsError()
    {
        // Arrange
        var big = new string('x', 64 * 1024);
        await using var app = await AdminApp.StartAsync(services: s => s.AddSingleton<ILodestarStatusSection>(new FakeSection("big", w =>
        {
            w.WriteStartArray();
            for (var i = 0; i < 20; i++)
            {
                w.WriteStringValue(big);
            }

            w.WriteEndArray();
        })));

        // Act
        var json = await app.GetJsonAsync();

        // Assert
        Assert.Contains("more than the 1048576 allowed", json.GetProperty("sections").GetProperty("big").GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    /// <summary>A section that writes what the test says.</summary>
    internal sealed class FakeSection(string name, Action<Utf8JsonWriter> write) : ILodestarStatusSection
    {
        public string Name => name;

        public void WriteTo(Utf8JsonWriter writer) => write(writer);
    }
}
