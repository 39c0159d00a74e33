import { describe, expect, it } from "vitest"
import { mean, median, percentile, ratio, spread } from "../../bench/stats.ts"

describe("percentile (nearest rank)", () => {
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i) // 100..1, unsorted on purpose

  it("takes the sample at rank ceil(p/100 * n)", () => {
    expect(percentile(hundred, 50)).toBe(50)
    expect(percentile(hundred, 99)).toBe(99)
    expect(percentile(hundred, 99.9)).toBe(100)
    expect(percentile(hundred, 1)).toBe(1)
  })

  it("clamps the ends and is NaN without samples", () => {
    expect(percentile([3, 1, 2], 0)).toBe(1)
    expect(percentile([3, 1, 2], 100)).toBe(3)
    expect(percentile([], 50)).toBeNaN()
  })

  it("leaves its input unsorted", () => {
    const samples = [3, 1, 2]
    percentile(samples, 50)
    expect(samples).toEqual([3, 1, 2])
  })
})

describe("median", () => {
  it("is the middle sample of an odd count", () => {
    expect(median([9, 1, 5])).toBe(5)
  })

  it("is the mean of the two middle samples of an even count", () => {
    expect(median([4, 1, 3, 2])).toBe(2.5)
  })

  it("is NaN without samples and the sample itself for one", () => {
    expect(median([])).toBeNaN()
    expect(median([7])).toBe(7)
  })
})

describe("spread over runs", () => {
  it("gives the median, the lowest and highest run and the count", () => {
    expect(spread([120, 80, 100])).toEqual({ median: 100, min: 80, max: 120, runs: 3 })
  })

  it("is NaN throughout for no runs", () => {
    const none = spread([])
    expect(none.runs).toBe(0)
    expect(none.median).toBeNaN()
    expect(none.min).toBeNaN()
    expect(none.max).toBeNaN()
  })
})

describe("mean and ratio", () => {
  it("mean averages, NaN without samples", () => {
    expect(mean([1, 2, 3, 6])).toBe(3)
    expect(mean([])).toBeNaN()
  })

  it("ratio divides, NaN when a side is missing or the base is zero", () => {
    expect(ratio(8_000, 200)).toBe(40)
    expect(ratio(1, 0)).toBeNaN()
    expect(ratio(Number.NaN, 2)).toBeNaN()
  })
})
