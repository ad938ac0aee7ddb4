using System.Text.Json;
using System.Text.Json.Serialization;
using Lodestar.Diagnostics;

namespace Lodestar.AspNetCore.Admin.Internal;

/// <summary>The admin API's JSON: camelCase, enums as strings, durations as milliseconds.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, UseStringEnumConverter = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    Converters = [typeof(MillisecondsConverter)])]
[JsonSerializable(typeof(LodestarInspection))]
internal sealed partial class AdminJsonContext : JsonSerializerContext;

/// <summary>Writes a <see cref="TimeSpan"/> as a number of milliseconds, which a page can chart without parsing.</summary>
internal sealed class MillisecondsConverter : JsonConverter<TimeSpan>
{
    public override TimeSpan Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        => TimeSpan.FromMilliseconds(reader.GetDouble());

    public override void Write(Utf8JsonWriter writer, TimeSpan value, JsonSerializerOptions options)
        => writer.WriteNumberValue(Math.Round(value.TotalMilliseconds, 3));
}
